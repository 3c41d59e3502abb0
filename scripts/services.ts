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
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, launch, log as logAs, portIsFree, stopProcess, waitForHttp, waitForPort } from './processes';
import { asServiceUser, giveToServiceUser, installServiceUserTools } from './serviceUser';

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
  installServiceUserTools();
  installRedis();
  installPostgres();
  buildGoServer('ferretdb');
  buildGoServer('minio');
}

export type ServiceName = 'redis' | 'postgres' | 'mongodb' | 's3';

/**
 * Every local service authenticates, so another user of the machine reaches none of them through
 * its loopback port: PostgreSQL's superuser (POSTGRES_ADMIN, for setup, pg_dump and pg_restore)
 * and FerretDB's own role (MONGO_USER, not a superuser: no COPY ... TO PROGRAM) by scram, the
 * MongoDB clients through FerretDB as that role, Redis by `requirepass`, MinIO by its root user.
 */
export type ServiceCredentials = { postgresAdmin: string; mongodb: string; redis: string; s3: { user: string; password: string } };

const secret = () => randomBytes(24).toString('hex'); // hex: safe inside URLs and config files as it is

export function newServiceCredentials(): ServiceCredentials {
  return { postgresAdmin: secret(), mongodb: secret(), redis: secret(), s3: { user: 'apex-local', password: secret() } };
}

/** Loopback ports of one set of services; FerretDB's debug listener and MinIO's console need one each too. */
export type ServicePorts = { redis: number; postgres: number; mongodb: number; s3: number; s3Console: number; ferretdbDebug: number };

export type ServicesOptions = {
  /** Keep the data here across starts (a local deployment). Absent: a fresh temporary directory, deleted by stop(). */
  dataDir?: string;
  /** Fixed ports (a deployment's configuration); free ones are picked for the rest. */
  ports?: Partial<ServicePorts>;
  /** Every service's credentials: a deployment keeps its own (secrets.json); random ones otherwise. */
  credentials?: ServiceCredentials;
  /** Redis persistence: AOF, fsync every second (as in docker-compose), for a deployment and tests that restart it. */
  redisAppendOnly?: boolean;
  /** PostgreSQL flushes every commit to disk. Off for throw-away runs (tests, benchmarks): nothing there must survive a crash. */
  durable?: boolean;
};

export type RunningServices = {
  env: Record<string, string>;
  credentials: ServiceCredentials;
  /** The running service processes (what `ps` shows of them: their user, for the tests). */
  processes: Partial<Record<ServiceName, ChildProcess>>;
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

/** The cluster's superuser: it sets the database up and takes backups; no product process uses it. */
export const POSTGRES_ADMIN = 'apex';
/** FerretDB's role: owns FerretDB's database and nothing else. */
export const MONGO_USER = 'ferretdb';
/** How psql, pg_dump and pg_restore reach the local PostgreSQL on `port` as its superuser. */
export const postgresClientArgs = (port: number) => ['-h', '127.0.0.1', '-p', String(port), '-U', POSTGRES_ADMIN];
/** Their environment: the password travels in PGPASSWORD, never on a command line that `ps` shows. */
export const postgresClientEnv = (adminPassword: string): NodeJS.ProcessEnv => ({ ...process.env, PGPASSWORD: adminPassword });
export const FERRETDB_DATABASE = 'ferretdb';
/**
 * FerretDB's PostgreSQL connections (its default is 50). Its updates take two at once, so clients
 * together must stay below this (see MONGO_POOL_PER_PROCESS); PostgreSQL allows POSTGRES_CONNECTIONS,
 * which leaves room for a backup's pg_dump and psql.
 */
export const FERRETDB_POOL = 180;
const POSTGRES_CONNECTIONS = 200;

/** Only password (scram) connections over loopback: no trust, no Unix socket. */
const PG_HBA = ['host all all 127.0.0.1/32 scram-sha-256', 'host all all ::1/128 scram-sha-256', ''].join('\n');

/**
 * A new cluster in `dir` (once; a kept one is reused) whose superuser POSTGRES_ADMIN has
 * `adminPassword`. A cluster made before services authenticated (trust, no password) gets the
 * password in single-user mode before it starts; every start writes pg_hba.conf and the password
 * again, so the cluster always matches the credentials it is started with.
 */
function preparePostgresCluster(dir: string, durable: boolean, adminPassword: string) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Recursively: a cluster from before the services ran as their own user belongs to root.
  giveToServiceUser(dir, { recursive: true });
  const passwordFile = `${dir}.admin-password`; // beside the cluster: initdb wants its directory empty
  writeFileSync(passwordFile, `${adminPassword}\n`, { mode: 0o600 });
  giveToServiceUser(passwordFile);
  try {
    if (!existsSync(join(dir, 'PG_VERSION'))) {
      const [cmd, args] = asServiceUser(postgresBin('initdb'), [
        '-D', dir, '-U', POSTGRES_ADMIN, '--auth=scram-sha-256', `--pwfile=${passwordFile}`, '-E', 'UTF8', '--locale=C', ...(durable ? [] : ['--no-sync']),
      ]);
      execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } else {
      // Single-user mode reads the statement on stdin: the password is never on a command line.
      const [cmd, args] = asServiceUser(postgresBin('postgres'), ['--single', '-D', dir, 'postgres']);
      const escaped = adminPassword.replace(/'/g, "''");
      execFileSync(cmd, args, { input: `ALTER ROLE ${POSTGRES_ADMIN} WITH SUPERUSER PASSWORD '${escaped}';\n`, stdio: ['pipe', 'ignore', 'pipe'] });
    }
  } finally {
    rmSync(passwordFile, { force: true });
  }
  writeFileSync(join(dir, 'pg_hba.conf'), PG_HBA, { mode: 0o600 });
  giveToServiceUser(join(dir, 'pg_hba.conf'));
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

/**
 * FerretDB's role and database, and the indexes its lookups can use (postgres/containment-indexes.sql).
 * postgres/ferretdb-role.sql also hands a database made before the role existed over to it.
 */
function prepareFerretDatabase(port: number, credentials: ServiceCredentials) {
  // On stdin, with the role and its password as psql variables: no password on a command line.
  const psql = (database: string, sql: string) =>
    execFileSync(postgresBin('psql'), [...postgresClientArgs(port), '-d', database, '-v', 'ON_ERROR_STOP=1', '-q', '-tA', '-f', '-'], {
      encoding: 'utf8',
      input: `\\set role ${MONGO_USER}\n\\set role_password '${credentials.mongodb}'\n${sql}`,
      env: postgresClientEnv(credentials.postgresAdmin),
    });
  const sqlFile = (name: string) => readFileSync(join(__dirname, 'postgres', name), 'utf8');
  psql('postgres', [
    `SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \\gexec`,
    `ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD :'role_password';`,
    `SELECT format('CREATE DATABASE %I OWNER %I', '${FERRETDB_DATABASE}', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '${FERRETDB_DATABASE}') \\gexec`,
    '',
  ].join('\n'));
  psql(FERRETDB_DATABASE, sqlFile('ferretdb-role.sql'));
  psql(FERRETDB_DATABASE, sqlFile('containment-indexes.sql'));
}

/**
 * Redis reads its password from a config file only it can read (a command line is visible to
 * every user through `ps`).
 */
function writeRedisConfig(dir: string, password: string): string {
  const file = join(dir, 'redis.conf');
  writeFileSync(file, `requirepass ${password}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  giveToServiceUser(file);
  return file;
}

/** Redis, PostgreSQL + FerretDB and MinIO; see ServicesOptions. */
export async function startServices(opts: ServicesOptions = {}): Promise<RunningServices> {
  installServices();
  const temporary = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'apex-services-'));
  const ports = await resolvePorts(opts.ports ?? {});
  const credentials = opts.credentials ?? newServiceCredentials();
  const durable = opts.durable ?? false;

  // Private data: each service's directory is its own (mode 700), under a directory only its owner lists.
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
  for (const dir of ['redis', 'ferretdb', 'minio']) {
    mkdirSync(join(dataDir, dir), { recursive: true, mode: 0o700 });
    chmodSync(join(dataDir, dir), 0o700);
    giveToServiceUser(join(dataDir, dir), { recursive: true });
  }
  preparePostgresCluster(join(dataDir, 'postgres'), durable, credentials.postgresAdmin);
  const redisConfig = writeRedisConfig(join(dataDir, 'redis'), credentials.redis);
  const persistence = opts.redisAppendOnly ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no'];
  const service = (cmd: string, args: string[], rest: Omit<ServiceSpec, 'cmd' | 'args'>): ServiceSpec => {
    const [asCmd, asArgs] = asServiceUser(cmd, args);
    return { cmd: asCmd, args: asArgs, ...rest };
  };
  const specs: Record<ServiceName, ServiceSpec> = {
    redis: service(
      redisServerPath(),
      [redisConfig, '--port', String(ports.redis), '--bind', '127.0.0.1', '--dir', join(dataDir, 'redis'), '--save', '', ...persistence, '--maxmemory-policy', 'noeviction'],
      { port: ports.redis },
    ),
    // SIGINT is PostgreSQL's "fast" shutdown: it ends its clients' sessions instead of waiting for them.
    postgres: service(
      postgresBin('postgres'),
      [
        '-D', join(dataDir, 'postgres'), '-p', String(ports.postgres), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=',
        '-c', `max_connections=${POSTGRES_CONNECTIONS}`, '-c', 'password_encryption=scram-sha-256',
        ...(durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']),
      ],
      { port: ports.postgres, stopSignal: 'SIGINT' },
    ),
    // No user in the PostgreSQL URL: FerretDB connects as whoever its client authenticates as
    // (PLAIN), so a client without MONGO_USER's password reaches nothing.
    mongodb: service(
      binPath('ferretdb'),
      [
        '--handler=postgresql',
        `--postgresql-url=postgres://127.0.0.1:${ports.postgres}/${FERRETDB_DATABASE}?pool_max_conns=${FERRETDB_POOL}`,
        `--listen-addr=127.0.0.1:${ports.mongodb}`, '--telemetry=disable', '--log-level=error',
        // Its debug/metrics HTTP listener defaults to the fixed :8088, which two stacks would fight over.
        `--debug-addr=127.0.0.1:${ports.ferretdbDebug}`,
        `--state-dir=${join(dataDir, 'ferretdb')}`,
      ],
      { port: ports.mongodb },
    ),
    s3: service(
      binPath('minio'),
      [
        'server', join(dataDir, 'minio'), '--address', `127.0.0.1:${ports.s3}`, '--console-address', `127.0.0.1:${ports.s3Console}`, '--quiet',
        // Its default, ~/.minio/certs, is not the services' user's to write (started by root, it has no home).
        '--certs-dir', join(dataDir, 'minio', '.minio.sys', 'certs'),
      ],
      {
        env: { ...process.env, MINIO_ROOT_USER: credentials.s3.user, MINIO_ROOT_PASSWORD: credentials.s3.password, MINIO_BROWSER: 'off' },
        port: ports.s3,
        healthUrl: `http://127.0.0.1:${ports.s3}/minio/health/live`,
      },
    ),
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
    prepareFerretDatabase(ports.postgres, credentials);
    await Promise.all((['redis', 'mongodb', 's3'] as const).map(startService));
  } catch (err) {
    await stop();
    throw err;
  }
  const env = {
    REDIS_URL: `redis://:${credentials.redis}@127.0.0.1:${ports.redis}`,
    MONGO_URL: `mongodb://${MONGO_USER}:${credentials.mongodb}@127.0.0.1:${ports.mongodb}/apex?authMechanism=PLAIN`,
    S3_ENDPOINT: `http://127.0.0.1:${ports.s3}`,
    S3_ACCESS_KEY_ID: credentials.s3.user,
    S3_SECRET_ACCESS_KEY: credentials.s3.password,
    S3_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: 'true',
  };
  return { env, ports, dataDir, credentials, processes, stop, stopService, startService };
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
