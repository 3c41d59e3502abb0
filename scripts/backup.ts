/**
 * Backups of a local deployment (`npm start`, scripts/deployment.ts):
 *
 *   npm run backup [-- FILE]            while it runs: database, queued work, objects and the
 *                                       deployment's secrets into one .tar.gz (mode 600: it holds keys)
 *   npm run restore -- FILE [--force]   while it is stopped: into APEX_HOME, then `npm start`;
 *                                       --force first moves an existing deployment's files aside
 *
 * Archive: database.pgdump (pg_dump of FerretDB's PostgreSQL database: jobs, API keys, ...),
 * redis.rdb (the queues, read over Redis's replication protocol), objects/<bucket>/<key> (every
 * object, through the S3 API, so the archive does not depend on MinIO's disk format), secrets.json,
 * manifest.json. The parts are read one after another: objects last, so every image a database
 * record names is in the archive.
 */
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config';
import { replayErasureLog } from '../src/flows/erasure/erasureReplay';
import { QueueSet } from '../src/flows/queues';
import { connectRedis } from '../src/redis';
import { connectMongo } from '../src/store/mongo';
import { ObjectStore } from '../src/store/objectStore';
import { assertOnlyFilesAndFolders, assertPlainTree, writePrivateArchive } from './backupArchive';
import { deploymentConfig, erasureLogPath, loadOrCreateSecrets, readSecrets, runningDeployment, serviceCredentials, writeSecrets, type DeploymentSecrets } from './deployment';
import { log as logAs } from './processes';
import { FERRETDB_DATABASE, postgresBin, postgresClientArgs, postgresClientEnv, startServices } from './services';

const log = (message: string) => logAs('backup', message);
const FORMAT = 1;

type Manifest = { format: number; createdAt: string; objects: number; objectBytes: number };

function s3Client(env: NodeJS.ProcessEnv): S3Client {
  return new S3Client({
    region: env.S3_REGION ?? 'us-east-1',
    endpoint: env.S3_ENDPOINT,
    forcePathStyle: true,
    credentials: { accessKeyId: env.S3_ACCESS_KEY_ID!, secretAccessKey: env.S3_SECRET_ACCESS_KEY! },
  });
}

async function downloadObjects(s3: S3Client, into: string): Promise<{ objects: number; bytes: number }> {
  let objects = 0;
  let bytes = 0;
  const { Buckets = [] } = await s3.send(new ListBucketsCommand({}));
  for (const { Name: bucket } of Buckets) {
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket!, ContinuationToken: token }));
      for (const { Key: key } of page.Contents ?? []) {
        const object = await s3.send(new GetObjectCommand({ Bucket: bucket!, Key: key! }));
        const body = Buffer.from(await object.Body!.transformToByteArray());
        const file = join(into, bucket!, key!);
        mkdirSync(dirname(file), { recursive: true });
        writeFileSync(file, body);
        objects += 1;
        bytes += body.length;
      }
      token = page.NextContinuationToken;
    } while (token);
  }
  return { objects, bytes };
}

async function backup(file: string | undefined) {
  const { home } = deploymentConfig();
  const running = runningDeployment(home);
  if (!running) throw new Error(`no deployment is running from ${home}: a backup reads a running one (npm start)`);
  const env = { ...process.env, ...running.env };
  const secrets = readSecrets(home)!;
  const credentials = serviceCredentials(secrets);
  const target = resolve(file ?? `apex-backup-${new Date().toISOString().replace(/[:.]/g, '-')}.tar.gz`);
  const work = mkdtempSync(join(tmpdir(), 'apex-backup-'));
  try {
    log('database');
    execFileSync(postgresBin('pg_dump'), [...postgresClientArgs(running.ports.postgres), '-Fc', '-f', join(work, 'database.pgdump'), FERRETDB_DATABASE], {
      env: postgresClientEnv(credentials.postgresAdmin),
    });
    log('queues');
    const redisUrl = new URL(env.REDIS_URL!);
    // REDISCLI_AUTH, not -a: a command line is visible to every user of the machine.
    execFileSync('redis-cli', ['-h', redisUrl.hostname, '-p', redisUrl.port, '--no-auth-warning', '--rdb', join(work, 'redis.rdb')], {
      stdio: 'ignore',
      env: { ...process.env, REDISCLI_AUTH: credentials.redis },
    });
    log('objects');
    const { objects, bytes } = await downloadObjects(s3Client(env), join(work, 'objects'));
    writeFileSync(join(work, 'secrets.json'), JSON.stringify(secrets, null, 2), { mode: 0o600 });
    const manifest: Manifest = { format: FORMAT, createdAt: new Date().toISOString(), objects, objectBytes: bytes };
    writeFileSync(join(work, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    await writePrivateArchive(target, work);
    process.stdout.write(`backup written to ${target} (${objects} objects, ${bytes} bytes of images); it holds the deployment's secrets: keep it private\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)]));
}

async function uploadObjects(s3: S3Client, from: string) {
  for (const bucket of existsSync(from) ? readdirSync(from) : []) {
    await s3.send(new CreateBucketCommand({ Bucket: bucket })).catch((err: { name?: string }) => {
      if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
    });
    for (const file of listFiles(join(from, bucket))) {
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: relative(join(from, bucket), file), Body: readFileSync(file) }));
    }
  }
}

/** Turns AOF on in the running Redis and waits until its rewrite has written the data there. */
async function persistRedisAsAof(redisUrl: string) {
  const redis = new Redis(redisUrl);
  try {
    await redis.config('SET', 'appendonly', 'yes');
    for (;;) {
      const info = await redis.info('persistence');
      const field = (name: string) => new RegExp(`${name}:(\\d+)`).exec(info)?.[1];
      if (field('aof_enabled') === '1' && field('aof_rewrite_in_progress') === '0' && field('aof_rewrite_scheduled') === '0') break;
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    redis.disconnect();
  }
}

/**
 * What the erasure log names is erased from the restored data before any process can serve it,
 * deliver its webhooks or run its steps (the orchestrator replays the log at every start too).
 */
async function eraseAgain(serviceEnv: Record<string, string>, logPath: string) {
  if (!existsSync(logPath)) return;
  const config = loadConfig({ ...process.env, ...serviceEnv, ERASURE_LOG: logPath, LOG_LEVEL: 'warn' });
  const mongoose = await connectMongo(config.MONGO_URL);
  const redis = connectRedis(config.REDIS_URL);
  const queues = new QueueSet(redis, config.QUEUE_PREFIX);
  const objects = ObjectStore.fromConfig(config);
  try {
    const replay = await replayErasureLog({ config, redis, objects, queues });
    log(`erasures: ${replay.logged} logged, ${replay.erasedAgain} resources and ${replay.tenantsErasedAgain} tenants in the backup erased again`);
  } finally {
    await queues.close();
    redis.disconnect();
    objects.client.destroy();
    await mongoose.disconnect();
  }
}

async function restore(file: string | undefined, force: boolean) {
  if (!file || !existsSync(file)) throw new Error('restore needs the backup file: npm run restore -- FILE [--force]');
  const { home, dataDir, ports } = deploymentConfig();
  if (runningDeployment(home)) throw new Error(`the deployment in ${home} is running: stop it first (Ctrl-C or SIGTERM to npm start)`);
  const holdsDeployment = existsSync(dataDir) || readSecrets(home) !== undefined;
  if (holdsDeployment && !force) throw new Error(`${home} already holds a deployment: pass --force to move it aside first, or set APEX_HOME to another directory`);
  const work = mkdtempSync(join(tmpdir(), 'apex-restore-'));
  try {
    // Read and checked before the deployment there is touched: a refused archive changes nothing.
    assertOnlyFilesAndFolders(resolve(file));
    execFileSync('tar', ['xzf', resolve(file), '-C', work, '--no-same-owner', '--no-same-permissions']);
    assertPlainTree(work);
    const manifest = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8')) as Manifest;
    if (manifest.format !== FORMAT) throw new Error(`${file} is backup format ${manifest.format}; this version reads format ${FORMAT}`);
    const backedUpSecrets = JSON.parse(readFileSync(join(work, 'secrets.json'), 'utf8')) as DeploymentSecrets;
    if (holdsDeployment) {
      const aside = `${home}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(home, aside);
      log(`moved the existing deployment to ${aside}`);
      // The erasure log is the present's, not the backup's: what was erased stays erased (replayed at the next start).
      if (existsSync(erasureLogPath(aside))) {
        mkdirSync(home, { recursive: true, mode: 0o700 });
        copyFileSync(erasureLogPath(aside), erasureLogPath(home));
      }
    }
    writeSecrets(home, backedUpSecrets);
    const secrets = loadOrCreateSecrets(home); // a backup from before the services authenticated gains their credentials
    mkdirSync(join(dataDir, 'redis'), { recursive: true, mode: 0o700 });
    // Redis loads dump.rdb at start while AOF is off; persistRedisAsAof then moves it into the AOF npm start uses.
    copyFileSync(join(work, 'redis.rdb'), join(dataDir, 'redis', 'dump.rdb'));
    const credentials = serviceCredentials(secrets);
    const services = await startServices({ dataDir, ports, credentials, redisAppendOnly: false, durable: true });
    try {
      log('database');
      // Replica mode keeps event triggers quiet: the dump's own indexes are restored as they were,
      // not doubled by postgres/containment-indexes.sql's trigger as each table's index comes in.
      execFileSync(postgresBin('pg_restore'), [
        ...postgresClientArgs(services.ports.postgres), '-d', FERRETDB_DATABASE, '--no-owner', '--clean', '--if-exists', join(work, 'database.pgdump'),
      ], { env: { ...postgresClientEnv(credentials.postgresAdmin), PGOPTIONS: '-c session_replication_role=replica' } });
      log('objects');
      await uploadObjects(s3Client(services.env), join(work, 'objects'));
      log('queues');
      await persistRedisAsAof(services.env.REDIS_URL);
      await eraseAgain(services.env, erasureLogPath(home));
    } finally {
      await services.stop();
    }
    rmSync(join(dataDir, 'redis', 'dump.rdb'), { force: true });
    process.stdout.write(`restored ${manifest.objects} objects and the database of ${manifest.createdAt} into ${home}; start it with npm start\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(args: string[]) {
  const [command, ...rest] = args;
  const file = rest.find((a) => !a.startsWith('--'));
  if (command === 'create') await backup(file);
  else if (command === 'restore') await restore(file, rest.includes('--force'));
  else throw new Error('usage: backup.ts create [FILE] | restore FILE [--force]');
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
