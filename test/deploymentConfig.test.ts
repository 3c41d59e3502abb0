import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PORTS, adminEnv, deploymentConfig, publishRunning, runningDeployment, writeSecrets, type RunningDeployment } from '../scripts/deployment';

describe("a local deployment's configuration", () => {
  it('puts its data in APEX_HOME, else under XDG_DATA_HOME, else ~/.local/share', () => {
    expect(deploymentConfig({ APEX_HOME: '/srv/apex' })).toMatchObject({ home: '/srv/apex', dataDir: '/srv/apex/data' });
    expect(deploymentConfig({ XDG_DATA_HOME: '/data' }).home).toBe('/data/apex-portraits');
    expect(deploymentConfig({}).home).toMatch(/\/\.local\/share\/apex-portraits$/);
  });

  it.each([
    ['PORT', '8080', 'api', 8080],
    ['APEX_REDIS_PORT', '1', 'redis', 1],
    ['APEX_POSTGRES_PORT', '65535', 'postgres', 65535],
    ['APEX_MONGO_PORT', '27017', 'mongodb', 27017],
    ['APEX_S3_PORT', '', 's3', DEFAULT_PORTS.s3],
  ] as const)('accepts %s=%p', (variable, value, name, port) => {
    expect(deploymentConfig({ [variable]: value }).ports[name]).toBe(port);
  });

  it.each([
    ['PORT', 'http'],
    ['APEX_REDIS_PORT', '0'],
    ['APEX_POSTGRES_PORT', '65536'],
    ['APEX_MONGO_PORT', '27017.5'],
    ['APEX_S3_CONSOLE_PORT', '-1'],
  ])('refuses %s=%p, naming the variable', (variable, value) => {
    expect(() => deploymentConfig({ [variable]: value })).toThrow(new RegExp(`^${variable} must be a port number`));
  });
});

describe('which deployment is running', () => {
  const ROOT = join(__dirname, '..');
  const homes: string[] = [];
  afterAll(() => homes.forEach((home) => rmSync(home, { recursive: true, force: true })));

  /** An APEX_HOME whose running.json names `pid` (undefined: none), optionally with a deployment's secrets. */
  function homeWith(pid: number | undefined, opts: { secrets?: boolean } = {}) {
    const home = mkdtempSync(join(tmpdir(), 'apex-running-'));
    homes.push(home);
    const running: RunningDeployment = { pid: pid ?? 0, apiUrl: 'http://127.0.0.1:1', ports: DEFAULT_PORTS, env: { MONGO_URL: 'mongodb://127.0.0.1:1/apex' }, startedAt: new Date().toISOString() };
    if (pid !== undefined) publishRunning(home, running);
    if (opts.secrets) writeSecrets(home, { SECRETS_KEY: 'k', ADMIN_TOKEN: 't', WEBHOOK_SECRET: 'w', s3: { user: 'u', password: 'p' } });
    return home;
  }
  // A pid that was alive and has ended: what a killed `npm start` leaves in running.json.
  const deadPid = spawnSync('true').pid!;

  it('is the one in running.json while its process lives; a stale file from a killed run is ignored', () => {
    expect(runningDeployment(homeWith(process.pid))?.pid).toBe(process.pid);
    expect(runningDeployment(homeWith(deadPid))).toBeUndefined();
    expect(runningDeployment(homeWith(undefined))).toBeUndefined();
  });

  it('gives the admin commands its service URLs, or says to start it', () => {
    expect(adminEnv({ APEX_HOME: homeWith(process.pid) }).MONGO_URL).toBe('mongodb://127.0.0.1:1/apex');
    expect(adminEnv({ APEX_HOME: homeWith(deadPid), MONGO_URL: 'mongodb://elsewhere/x' }).MONGO_URL).toBe('mongodb://elsewhere/x');
    for (const home of [homeWith(deadPid), homeWith(undefined)]) {
      expect(() => adminEnv({ APEX_HOME: home })).toThrow(`no deployment is running from ${home}: start it with \`npm start\``);
    }
  });

  it.each([
    ['a running deployment', () => homeWith(process.pid), /is running: stop it first/],
    ['a stopped one, unless --force', () => homeWith(undefined, { secrets: true }), /already holds a deployment: pass --force/],
    ['a stopped one that was killed (stale running.json), unless --force', () => homeWith(deadPid, { secrets: true }), /already holds a deployment: pass --force/],
  ])('npm run restore refuses to write over %s', (_, home, message) => {
    const archive = join(homeWith(undefined), 'backup.tar.gz');
    writeFileSync(archive, 'not read: refused before');
    const restore = spawnSync(join(ROOT, 'node_modules/.bin/tsx'), ['scripts/backup.ts', 'restore', archive], { cwd: ROOT, env: { ...process.env, APEX_HOME: home() }, encoding: 'utf8' });
    expect(restore.status).toBe(1);
    expect(restore.stderr).toMatch(message);
  });
});
