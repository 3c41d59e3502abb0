/**
 * The real backing services for tests and local runs, installed and started by the project itself
 * (no Docker engine here): Redis from Debian, FerretDB v1 on SQLite as the MongoDB server, MinIO as
 * the S3 server. Binaries are built once per machine into ~/.cache/apex-portraits (a second install
 * costs seconds); every start gets free loopback ports and a fresh data directory.
 *
 *   tsx scripts/services.ts install      build/install what is missing
 *   tsx scripts/services.ts start        start all three in the foreground, print their env, Ctrl-C stops
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

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

function log(message: string) {
  process.stderr.write(`[services] ${message}\n`);
}

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

export function installServices() {
  installRedis();
  buildGoServer('ferretdb');
  buildGoServer('minio');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, name: string, child: ChildProcess, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode} during start`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1');
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} did not open port ${port} within ${timeoutMs} ms`);
}

async function waitForHttp(url: string, name: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} not healthy at ${url} within ${timeoutMs} ms`);
}

export type ServiceName = 'redis' | 'mongodb' | 's3';

export type RunningServices = {
  env: Record<string, string>;
  /** Stops all of them and removes their data. */
  stop(): Promise<void>;
  /** For chaos tests: stops one (SIGTERM, its data kept) ... */
  stopService(name: ServiceName): Promise<void>;
  /** ... and starts it again on the same port with the same data. */
  startService(name: ServiceName): Promise<void>;
};

function launch(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  child.on('exit', (code, signal) => {
    if (code && !signal) log(`${cmd} exited with ${code}: ${stderr.trim()}`);
  });
  return child;
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

type ServiceSpec = { cmd: string; args: string[]; env?: NodeJS.ProcessEnv; port: number; healthUrl?: string };

/**
 * Redis, FerretDB and MinIO on free ports with a fresh data directory. `redisAppendOnly` turns on
 * Redis persistence (AOF, fsync every second, as in docker-compose) for tests that restart it.
 */
export async function startServices(opts: { redisAppendOnly?: boolean } = {}): Promise<RunningServices> {
  installServices();
  const dataDir = mkdtempSync(join(tmpdir(), 'apex-services-'));
  const [redisPort, mongoPort, s3Port, debugPort, consolePort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const s3User = 'apex-local';
  const s3Secret = `apex-local-${Math.random().toString(36).slice(2)}`;

  mkdirSync(join(dataDir, 'redis'));
  mkdirSync(join(dataDir, 'ferretdb'));
  mkdirSync(join(dataDir, 'minio'));
  const persistence = opts.redisAppendOnly ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no'];
  const specs: Record<ServiceName, ServiceSpec> = {
    redis: {
      cmd: redisServerPath(),
      args: ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', join(dataDir, 'redis'), '--save', '', ...persistence, '--maxmemory-policy', 'noeviction'],
      port: redisPort,
    },
    mongodb: {
      cmd: binPath('ferretdb'),
      args: [
        '--handler=sqlite',
        // BEGIN IMMEDIATE: concurrent writers queue on busy_timeout instead of failing with SQLITE_BUSY
        // when a read transaction tries to upgrade; synchronous=normal is WAL's usual pairing.
        `--sqlite-url=file:${join(dataDir, 'ferretdb')}/?_txlock=immediate&_pragma=synchronous(normal)`,
        `--listen-addr=127.0.0.1:${mongoPort}`, '--telemetry=disable', '--log-level=error',
        // Its debug/metrics HTTP listener defaults to the fixed :8088, which two stacks would fight over.
        `--debug-addr=127.0.0.1:${debugPort}`,
        `--state-dir=${join(dataDir, 'ferretdb')}`,
      ],
      port: mongoPort,
    },
    s3: {
      cmd: binPath('minio'),
      args: ['server', join(dataDir, 'minio'), '--address', `127.0.0.1:${s3Port}`, '--console-address', `127.0.0.1:${consolePort}`, '--quiet'],
      env: { ...process.env, MINIO_ROOT_USER: s3User, MINIO_ROOT_PASSWORD: s3Secret, MINIO_BROWSER: 'off' },
      port: s3Port,
      healthUrl: `http://127.0.0.1:${s3Port}/minio/health/live`,
    },
  };
  const processes = {} as Record<ServiceName, ChildProcess>;
  const startService = async (name: ServiceName) => {
    const spec = specs[name];
    processes[name] = launch(spec.cmd, spec.args, spec.env);
    await waitForPort(spec.port, name, processes[name]);
    if (spec.healthUrl) await waitForHttp(spec.healthUrl, name);
  };
  const stopService = (name: ServiceName) => kill(processes[name]);
  const stop = async () => {
    await Promise.all(Object.values(processes).map(kill));
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await Promise.all((Object.keys(specs) as ServiceName[]).map(startService));
  } catch (err) {
    await stop();
    throw err;
  }
  const env = {
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    MONGO_URL: `mongodb://127.0.0.1:${mongoPort}/apex`,
    S3_ENDPOINT: `http://127.0.0.1:${s3Port}`,
    S3_ACCESS_KEY_ID: s3User,
    S3_SECRET_ACCESS_KEY: s3Secret,
    S3_REGION: 'us-east-1',
    S3_FORCE_PATH_STYLE: 'true',
  };
  return { env, stop, stopService, startService };
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
