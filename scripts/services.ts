/**
 * The real backing services for tests and local runs, installed and started by the project itself
 * (no Docker engine here): Redis from Debian, PostgreSQL from Debian with FerretDB v1 on it as the
 * MongoDB server, MinIO as the S3 server. Binaries are built once per machine into
 * ~/.cache/apex-portraits (a second install costs seconds). Tests get free loopback ports and a
 * throw-away data directory; `npm start` (scripts/start.ts) passes its own ports and data directory.
 *
 *   tsx scripts/services.ts install      build/install what is missing
 *   tsx scripts/services.ts start        start all of them in the foreground (throw-away), print their env, Ctrl-C stops
 */
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, launch, log as logAs, portIsFree, stopProcess, waitForHttp, waitForPort } from './processes';

export { freePort } from './processes';

const CACHE = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'apex-portraits', 'bin');

/** Go programs built from their published module source, pinned. */
const GO_SERVERS = {
  ferretdb: {
    module: 'github.com/FerretDB/FerretDB',
    version: 'v1.24.2',
    pkg: './cmd/ferretdb',
    // The module zip lacks the version file that `bin/task gen-version` writes; FerretDB panics without it.
    files: { 'build/version/version.txt': 'v1.24.2\n' } as Record<string, string>,
  },
  minio: { module: 'github.com/minio/minio', version: 'v0.0.0-20260212201848-7aac2a2c5b7c', pkg: '.', files: {} },
} as const;

const binPath = (name: keyof typeof GO_SERVERS) => join(CACHE, `${name}-${GO_SERVERS[name].version}`);

const log = (message: string) => logAs('services', message);

function commandExists(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function redisServerPath(): string {
  for (const p of ['/usr/bin/redis-server', '/usr/local/bin/redis-server']) if (existsSync(p)) return p;
  return 'redis-server';
}

function installRedis() {
  if (commandExists('redis-server') || existsSync('/usr/bin/redis-server')) return;
  log('installing redis-server from Debian packages');
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

/**
 * `go install module@version` asks the proxy for the module's version list, which is refused for
 * FerretDB here; downloading the pinned module and building it from the module cache needs no list.
 */
function buildGoServer(name: keyof typeof GO_SERVERS) {
  const target = binPath(name);
  if (existsSync(target)) return;
  const { module, version, pkg, files } = GO_SERVERS[name];
  log(`building ${name} ${version} with go (once per machine, a few minutes)`);
  mkdirSync(CACHE, { recursive: true });
  const info = JSON.parse(execFileSync('go', ['mod', 'download', '-json', `${module}@${version}`], { encoding: 'utf8' }));
  let srcDir = info.Dir as string;
  if (Object.keys(files).length > 0) {
    // The module cache is read-only: build a writable copy that has the extra files.
    srcDir = mkdtempSync(join(tmpdir(), `build-${name}-`));
    execFileSync('cp', ['-r', `${info.Dir}/.`, srcDir]);
    execFileSync('chmod', ['-R', 'u+w', srcDir]);
    for (const [file, content] of Object.entries(files)) writeFileSync(join(srcDir, file), content);
  }
  execFileSync('go', ['build', '-o', `${target}.tmp`, pkg], { cwd: srcDir, stdio: 'inherit', env: { ...process.env, GOFLAGS: '-mod=mod' } });
  execFileSync('mv', [`${target}.tmp`, target]);
  if (srcDir !== info.Dir) rmSync(srcDir, { recursive: true, force: true });
}

/** Debian's PostgreSQL server binaries (initdb, postgres, pg_dump, pg_restore), newest installed major version. */
export function postgresBin(tool: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'postgres'))) : [];
  if (versions.length === 0) throw new Error('PostgreSQL is not installed (tsx scripts/services.ts install)');
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  return join(root, newest, 'bin', tool);
}

function installPostgres() {
  try {
    postgresBin('postgres');
    return;
  } catch {
    log('installing postgresql from Debian packages');
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', 'postgresql'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
}

export function installServices() {
  installRedis();
  installPostgres();
  buildGoServer('ferretdb');
  buildGoServer('minio');
}

export type ServiceName = 'redis' | 'postgres' | 'mongodb' | 's3';

/** Loopback ports of one set of services; FerretDB's debug listener and MinIO's console need one each too. */
export type ServicePorts = { redis: number; postgres: number; mongodb: number; s3: number; s3Console: number; ferretdbDebug: number };

export type ServicesOptions = {
  /** Keep the data here across starts (a local deployment). Absent: a fresh temporary directory, deleted by stop(). */
  dataDir?: string;
  /** Fixed ports (a deployment's configuration); free ones are picked for the rest. */
  ports?: Partial<ServicePorts>;
  /** MinIO's root credentials: a deployment keeps its own; random ones otherwise. */
  s3Credentials?: { user: string; password: string };
  /** Redis persistence: AOF, fsync every second (as in docker-compose), for a deployment and tests that restart it. */
  redisAppendOnly?: boolean;
  /** PostgreSQL flushes every commit to disk. Off for throw-away runs (tests, benchmarks): nothing there must survive a crash. */
  durable?: boolean;
};

export type RunningServices = {
  env: Record<string, string>;
  ports: ServicePorts;
  dataDir: string;
  /** Stops all of them (FerretDB and the others before PostgreSQL); removes a temporary data directory. */
  stop(): Promise<void>;
  /** For chaos tests: stops one (SIGTERM, its data kept) ... */
  stopService(name: ServiceName): Promise<void>;
  /** ... and starts it again on the same port with the same data. */
  startService(name: ServiceName): Promise<void>;
};

type ServiceSpec = { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; port: number; healthUrl?: string; stopSignal?: NodeJS.Signals };

/** The configuration variable that sets each service's port (scripts/deployment.ts adds the API's). */
export const SERVICE_PORT_VARIABLES: Record<keyof ServicePorts, string> = {
  redis: 'APEX_REDIS_PORT',
  postgres: 'APEX_POSTGRES_PORT',
  mongodb: 'APEX_MONGO_PORT',
  s3: 'APEX_S3_PORT',
  s3Console: 'APEX_S3_CONSOLE_PORT',
  ferretdbDebug: 'APEX_FERRETDB_DEBUG_PORT',
};

/** Refuses a configured port something else holds, naming the variable that sets it. */
export async function assertPortFree(port: number, variable: string, what = variable): Promise<void> {
  if (!(await portIsFree(port))) throw new Error(`port ${port} (${what}) is already in use on 127.0.0.1: stop what holds it, or set ${variable} to a free port`);
}

async function resolvePorts(fixed: Partial<ServicePorts>): Promise<ServicePorts> {
  const ports = {} as ServicePorts;
  for (const name of Object.keys(SERVICE_PORT_VARIABLES) as (keyof ServicePorts)[]) {
    const port = fixed[name];
    if (port === undefined) {
      ports[name] = await freePort();
    } else {
      await assertPortFree(port, SERVICE_PORT_VARIABLES[name]);
      ports[name] = port;
    }
  }
  return ports;
}

/**
 * PostgreSQL refuses to run as root. Run as root (a CI machine, a container), it is started in a
 * user namespace where root appears as the `postgres` user the Debian package creates: its files
 * stay owned by the caller outside, and no directory permissions need changing.
 */
function asPostgresUser(cmd: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [cmd, args];
  const uid = execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim();
  const gid = execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim();
  return ['unshare', ['--user', `--map-user=${uid}`, `--map-group=${gid}`, cmd, ...args]];
}

export const POSTGRES_USER = 'apex';
/** How psql, pg_dump and pg_restore reach the local PostgreSQL on `port`. */
export const postgresClientArgs = (port: number) => ['-h', '127.0.0.1', '-p', String(port), '-U', POSTGRES_USER];
export const FERRETDB_DATABASE = 'ferretdb';
/**
 * FerretDB's PostgreSQL connections (its default is 50). Its updates take two at once, so clients
 * together must stay below this (see MONGO_POOL_PER_PROCESS); PostgreSQL allows POSTGRES_CONNECTIONS,
 * which leaves room for a backup's pg_dump and psql.
 */
export const FERRETDB_POOL = 180;
const POSTGRES_CONNECTIONS = 200;

/** A new cluster in `dir` (once; a kept one is reused), owned by POSTGRES_USER, password-less on loopback only. */
function initPostgres(dir: string, durable: boolean) {
  if (existsSync(join(dir, 'PG_VERSION'))) return;
  mkdirSync(dir, { recursive: true });
  const [cmd, args] = asPostgresUser(postgresBin('initdb'), [
    '-D', dir, '-U', POSTGRES_USER, '--auth=trust', '-E', 'UTF8', '--locale=C', ...(durable ? [] : ['--no-sync']),
  ]);
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * PostgreSQL opens its port before it takes connections ("the database system is starting up"
 * while it replays its log after a restart): waits for pg_isready to say it accepts them.
 */
async function waitForPostgres(port: number, child: ChildProcess, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (spawnSync(postgresBin('pg_isready'), [...postgresClientArgs(port), '-d', 'postgres', '-q']).status !== 0) {
    if (child.exitCode !== null) throw new Error(`postgres exited with code ${child.exitCode} during start`);
    if (Date.now() > deadline) throw new Error(`postgres did not accept connections on port ${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** FerretDB's database, and the indexes its lookups can use (postgres/containment-indexes.sql). */
function prepareFerretDatabase(port: number) {
  const psql = (database: string, ...args: string[]) =>
    execFileSync(postgresBin('psql'), [...postgresClientArgs(port), '-d', database, '-v', 'ON_ERROR_STOP=1', '-q', ...args], { encoding: 'utf8' });
  const exists = psql('postgres', '-tAc', `SELECT 1 FROM pg_database WHERE datname = '${FERRETDB_DATABASE}'`).trim();
  if (exists !== '1') psql('postgres', '-c', `CREATE DATABASE ${FERRETDB_DATABASE}`);
  psql(FERRETDB_DATABASE, '-f', join(__dirname, 'postgres', 'containment-indexes.sql'));
}

/** Redis, PostgreSQL + FerretDB and MinIO; see ServicesOptions. */
export async function startServices(opts: ServicesOptions = {}): Promise<RunningServices> {
  installServices();
  const temporary = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'apex-services-'));
  const ports = await resolvePorts(opts.ports ?? {});
  const s3 = opts.s3Credentials ?? { user: 'apex-local', password: `apex-local-${Math.random().toString(36).slice(2)}` };
  const durable = opts.durable ?? false;

  for (const dir of ['redis', 'ferretdb', 'minio']) mkdirSync(join(dataDir, dir), { recursive: true });
  initPostgres(join(dataDir, 'postgres'), durable);
  const persistence = opts.redisAppendOnly ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no'];
  const [postgresCmd, postgresArgs] = asPostgresUser(postgresBin('postgres'), [
    '-D', join(dataDir, 'postgres'), '-p', String(ports.postgres), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
    '-c', `max_connections=${POSTGRES_CONNECTIONS}`,
    ...(durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
  ]);
  const specs: Record<ServiceName, ServiceSpec> = {
    redis: {
      cmd: redisServerPath(),
      args: ['--port', String(ports.redis), '--bind', '127.0.0.1', '--dir', join(dataDir, 'redis'), '--save', '', ...persistence, '--maxmemory-policy', 'noeviction'],
      port: ports.redis,
    },
    // SIGINT is PostgreSQL's "fast" shutdown: it ends its clients' sessions instead of waiting for them.
    postgres: { cmd: postgresCmd, args: postgresArgs, port: ports.postgres, stopSignal: 'SIGINT' },
    mongodb: {
      cmd: binPath('ferretdb'),
      args: [
        '--handler=postgresql',
        `--postgresql-url=postgres://${POSTGRES_USER}@127.0.0.1:${ports.postgres}/${FERRETDB_DATABASE}?pool_max_conns=${FERRETDB_POOL}`,
        `--listen-addr=127.0.0.1:${ports.mongodb}`, '--telemetry=disable', '--log-level=error',
        // Its debug/metrics HTTP listener defaults to the fixed :8088, which two stacks would fight over.
        `--debug-addr=127.0.0.1:${ports.ferretdbDebug}`,
        `--state-dir=${join(dataDir, 'ferretdb')}`,
      ],
      port: ports.mongodb,
    },
    s3: {
      cmd: binPath('minio'),
      args: ['server', join(dataDir, 'minio'), '--address', `127.0.0.1:${ports.s3}`, '--console-address', `127.0.0.1:${ports.s3Console}`, '--quiet'],
      env: { ...process.env, MINIO_ROOT_USER: s3.user, MINIO_ROOT_PASSWORD: s3.password, MINIO_BROWSER: 'off' },
      port: ports.s3,
      healthUrl: `http://127.0.0.1:${ports.s3}/minio/health/live`,
    },
  };
  const processes = {} as Partial<Record<ServiceName, ChildProcess>>;
  const startService = async (name: ServiceName) => {
    const spec = specs[name];
    processes[name] = launch(spec.cmd, spec.args, spec.env);
    await waitForPort(spec.port, name, processes[name]);
    if (spec.healthUrl) await waitForHttp(spec.healthUrl, name);
  };
  const stopService = (name: ServiceName) => stopProcess(processes[name], specs[name].stopSignal, 30_000);
  const stop = async () => {
    await Promise.all((['redis', 'mongodb', 's3'] as const).map(stopService));
    await stopService('postgres');
    if (temporary) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await startService('postgres');
    await waitForPostgres(ports.postgres, processes.postgres!);
    prepareFerretDatabase(ports.postgres);
    await Promise.all((['redis', 'mongodb', 's3'] as const).map(startService));
  } catch (err) {
    await stop();
    throw err;
  }
  const env = {
    REDIS_URL: `redis://127.0.0.1:${ports.redis}`,
    MONGO_URL: `mongodb://127.0.0.1:${ports.mongodb}/apex`,
    S3_ENDPOINT: `http://127.0.0.1:${ports.s3}`,
    S3_ACCESS_KEY_ID: s3.user,
    S3_SECRET_ACCESS_KEY: s3.password,
    S3_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: 'true',
  };
  return { env, ports, dataDir, stop, stopService, startService };
}

if (require.main === module) {
  const command = process.argv[2];
  if (command === 'install') {
    installServices();
    log('all services installed');
  } else if (command === 'start') {
    startServices().then((services) => {
      for (const [k, v] of Object.entries(services.env)) process.stdout.write(`${k}=${v}\n`);
      const stop = () => void services.stop().then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  } else {
    log('usage: tsx scripts/services.ts install|start');
    process.exit(2);
  }
}
