/**
 * The user the local services run as. Started by an ordinary user, they run as that user. Started
 * by root (a CI machine, a container, `sudo npm start`), they run as the unprivileged system user
 * SERVICE_USER instead, so that nothing a client can make a server do (a superuser's COPY ... TO
 * PROGRAM, a Redis CONFIG) runs with root's rights, and their files are theirs alone (umask 077).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { log } from './processes';

export const SERVICE_USER = 'apex-services';

const isRoot = () => process.getuid?.() === 0;

type Ids = { uid: number; gid: number };
let serviceIds: Ids | undefined;

/** SERVICE_USER's ids, creating the system user once per machine. */
function ids(): Ids {
  if (serviceIds) return serviceIds;
  const lookup = () => spawnSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' });
  if (lookup().status !== 0) {
    log('services', `creating the system user ${SERVICE_USER} that the services run as`);
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', SERVICE_USER]);
  }
  const uid = Number(execFileSync('id', ['-u', SERVICE_USER], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', SERVICE_USER], { encoding: 'utf8' }).trim());
  serviceIds = { uid, gid };
  return serviceIds;
}

/** Folders this process already opened to SERVICE_USER: every service and data folder shares /root and the cache. */
const granted = new Set<string>();

/**
 * Lets SERVICE_USER pass through every directory above `path` (execute only, for that user only,
 * by an ACL): root's home is 700, and the data directory or a built binary may be under it.
 */
function grantPassage(path: string) {
  const { uid } = ids();
  for (let dir = dirname(resolve(path)); ; dir = dirname(dir)) {
    const st = statSync(dir);
    if (!(st.mode & 0o001) && st.uid !== uid && !granted.has(dir)) {
      execFileSync('setfacl', ['-m', `u:${SERVICE_USER}:x`, dir]);
      granted.add(dir);
    }
    if (dir === '/') break;
  }
}

/** setfacl, which grantPassage needs as root (Debian's acl package). */
export function installServiceUserTools() {
  if (!isRoot() || spawnSync('sh', ['-c', 'command -v setfacl'], { stdio: 'ignore' }).status === 0) return;
  log('services', 'installing acl from Debian packages (setfacl)');
  const apt = (...args: string[]) =>
    execFileSync('apt-get', ['-o', 'DPkg::Lock::Timeout=600', ...args], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  apt('update', '-qq');
  apt('install', '-y', '-qq', 'acl');
}

/**
 * `cmd args` run as the services' user with umask 077. As root: through setpriv to SERVICE_USER,
 * with no supplementary groups and no way back up (no-new-privs: setuid programs do not elevate).
 */
export function asServiceUser(cmd: string, args: string[]): [string, string[]] {
  const withUmask = ['sh', '-c', 'umask 077 && exec "$0" "$@"', cmd, ...args];
  if (!isRoot()) return [withUmask[0], withUmask.slice(1)];
  const { uid, gid } = ids();
  if (existsSync(cmd)) grantPassage(cmd);
  return ['setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--no-new-privs', ...withUmask]];
}

/** Hands `path` (a service's data) to the services' user, and lets that user reach it. No-op unless root. */
export function giveToServiceUser(path: string, opts: { recursive?: boolean } = {}) {
  if (!isRoot()) return;
  const { uid, gid } = ids();
  execFileSync('chown', [...(opts.recursive ? ['-R'] : []), `${uid}:${gid}`, path]);
  grantPassage(path);
}

/** The uid the services run as: SERVICE_USER's as root, else this process's own. */
export function serviceUid(): number {
  return isRoot() ? ids().uid : process.getuid!();
}
