import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { MONGO_USER, POSTGRES_ADMIN, postgresBin, startServices, type RunningServices } from '../scripts/services';
import { asServiceUser, serviceUid } from '../scripts/serviceUser';

const isRoot = process.getuid?.() === 0;

/**
 * What another local user can run (the probe's view): as root, the command runs as `nobody`
 * through setpriv, as the probe's unprivileged user did; otherwise as this user, who is just as
 * much a stranger to credentials it does not hold.
 */
function asStranger(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const [command, argv] = isRoot ? ['setpriv', ['--reuid=nobody', '--regid=nogroup', '--clear-groups', cmd, ...args]] : [cmd, args];
  return spawnSync(command, argv, { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 30_000 });
}

const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

/** Every file and folder under `dir`, with its mode. */
function modes(dir: string): { path: string; mode: number; isDir: boolean }[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    const entry = { path, mode: statSync(path).mode & 0o777, isDir: e.isDirectory() };
    return e.isDirectory() ? [entry, ...modes(path)] : [entry];
  });
}

describe('local services authenticate every client and run unprivileged', () => {
  let services: RunningServices;
  let dataDir: string;
  let pgPort: number;
  const psql = (user: string, password: string | undefined, sql: string) =>
    asStranger(postgresBin('psql'), ['-h', '127.0.0.1', '-p', String(pgPort), '-U', user, '-d', 'postgres', '-w', '-tA', '-c', sql], password === undefined ? {} : { PGPASSWORD: password });

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'apex-auth-'));
    services = await startServices({ dataDir, redisAppendOnly: true });
    pgPort = services.ports.postgres;
  }, 180_000);
  afterAll(async () => {
    await services?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  describe('PostgreSQL', () => {
    test.each([
      ['the superuser without a password', () => psql(POSTGRES_ADMIN, undefined, 'SELECT 1')],
      ["FerretDB's role without a password", () => psql(MONGO_USER, undefined, 'SELECT 1')],
      ['the superuser with a wrong password', () => psql(POSTGRES_ADMIN, 'not-the-password', 'SELECT 1')],
      ["FerretDB's role with the superuser's password", () => psql(MONGO_USER, services.credentials.postgresAdmin, 'SELECT 1')],
      ['the usual postgres superuser without a password', () => psql('postgres', undefined, 'SELECT 1')],
    ])('refuses %s', (_name, connect) => {
      const result = connect();
      expect(result.status).not.toBe(0);
      expect(result.stderr).toMatch(/password authentication failed|no password supplied|fe_sendauth/);
    });

    test.each([
      ['the superuser', () => psql(POSTGRES_ADMIN, services.credentials.postgresAdmin, 'SELECT 41 + 1')],
      ["FerretDB's role", () => psql(MONGO_USER, services.credentials.mongodb, 'SELECT 41 + 1')],
    ])('accepts %s with its password', (_name, connect) => {
      const result = connect();
      expect(result.stderr).toBe('');
      expect(result.stdout.trim()).toBe('42');
    });

    test("FerretDB's role is no superuser: COPY ... TO PROGRAM is refused", () => {
      const marker = join(tmpdir(), `apex-copy-${process.pid}`);
      expect(psql(MONGO_USER, services.credentials.mongodb, 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user').stdout.trim()).toBe('f');
      const copy = psql(MONGO_USER, services.credentials.mongodb, `COPY (SELECT 1) TO PROGRAM 'touch ${marker}'`);
      expect(copy.stderr).toMatch(/permission denied|must be superuser/);
      expect(() => statSync(marker)).toThrow();
    });

    test("even the superuser's programs run as the services' user, never as root", () => {
      const marker = join(tmpdir(), `apex-copy-admin-${process.pid}`);
      try {
        const copy = psql(POSTGRES_ADMIN, services.credentials.postgresAdmin, `COPY (SELECT 1) TO PROGRAM 'cat > ${marker}'`);
        expect(copy.stderr).toBe('');
        expect(statSync(marker).uid).toBe(serviceUid());
        if (isRoot) expect(statSync(marker).uid).not.toBe(0);
      } finally {
        rmSync(marker, { force: true });
      }
    });
  });

  describe('Redis', () => {
    const redisCli = (env: NodeJS.ProcessEnv) => asStranger('redis-cli', ['-p', String(services.ports.redis), '--no-auth-warning', 'PING'], env);

    test.each([
      ['no password', {}],
      ['a wrong password', { REDISCLI_AUTH: 'not-the-password' }],
    ])('refuses a client with %s', (_name, env) => {
      expect(redisCli(env).stdout).toMatch(/NOAUTH|WRONGPASS/);
    });

    test('accepts the password, and REDIS_URL carries it', async () => {
      expect(redisCli({ REDISCLI_AUTH: services.credentials.redis }).stdout.trim()).toBe('PONG');
      const redis = new Redis(services.env.REDIS_URL);
      try {
        expect(await redis.ping()).toBe('PONG');
      } finally {
        redis.disconnect();
      }
    });
  });

  describe('MongoDB (FerretDB)', () => {
    const server = () => `127.0.0.1:${services.ports.mongodb}`;
    async function insertAndRead(url: string): Promise<unknown> {
      const connection = await mongoose.createConnection(url, { serverSelectionTimeoutMS: 5000 }).asPromise();
      try {
        const collection = connection.db!.collection('probe');
        await collection.insertOne({ probe: 1 });
        return (await collection.findOne({ probe: 1 }))?.probe;
      } finally {
        await connection.close();
      }
    }

    test.each([
      ['no credentials', () => `mongodb://${server()}/apex`],
      ['a wrong password', () => `mongodb://${MONGO_USER}:not-the-password@${server()}/apex?authMechanism=PLAIN`],
      ["the superuser's name with FerretDB's password", () => `mongodb://${POSTGRES_ADMIN}:${services.credentials.mongodb}@${server()}/apex?authMechanism=PLAIN`],
    ])('refuses a client with %s', async (_name, url) => {
      await expect(insertAndRead(url())).rejects.toThrow(/auth|password|connect|ConnectionPool/i);
    });

    test('accepts MONGO_URL, which names the role and its password', async () => {
      expect(services.env.MONGO_URL).toContain(`${MONGO_USER}:${services.credentials.mongodb}@`);
      expect(await insertAndRead(services.env.MONGO_URL)).toBe(1);
    });
  });

  test("every service runs as the services' user, never as root, and no password is on a command line", () => {
    const secrets = [services.credentials.postgresAdmin, services.credentials.mongodb, services.credentials.redis, services.credentials.s3.password];
    for (const [name, child] of Object.entries(services.processes)) {
      expect({ name, uid: uidOf(child!.pid!) }).toEqual({ name, uid: serviceUid() });
      if (isRoot) expect(uidOf(child!.pid!)).not.toBe(0);
      const commandLine = readFileSync(`/proc/${child!.pid}/cmdline`, 'utf8');
      for (const secret of secrets) expect(commandLine).not.toContain(secret);
    }
  });

  test("the services' files are private: folders 700, files 600 (Redis' AOF and config among them)", () => {
    const entries = modes(dataDir).filter((e) => !e.path.includes(`${join(dataDir, 'minio')}/`)); // MinIO's own inner layout aside
    expect(entries.some((e) => e.path.includes('appendonly'))).toBe(true);
    expect(entries.some((e) => e.path.endsWith('redis.conf'))).toBe(true);
    for (const entry of entries) {
      const allowed = entry.isDir ? 0o700 : 0o600;
      expect({ path: entry.path, mode: (entry.mode | allowed) === allowed }).toEqual({ path: entry.path, mode: true });
    }
    // Another user (the probe's `nobody`) cannot read the password; without root there is no other user to be.
    if (isRoot) expect(asStranger('cat', [join(dataDir, 'redis', 'redis.conf')]).status).not.toBe(0);
  });
});

describe('a deployment made before the services authenticated is brought under authentication', () => {
  test('trust and a superuser-owned database become scram and a database owned by an ordinary role, data kept', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'apex-old-'));
    const cluster = join(dataDir, 'postgres');
    const ownerOf = (services: RunningServices) =>
      execFileSync(postgresBin('psql'), ['-h', '127.0.0.1', '-p', String(services.ports.postgres), '-U', POSTGRES_ADMIN, '-d', 'ferretdb', '-tA', '-c',
        "SELECT r.rolname FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE c.relname = 'old_table'"], {
        encoding: 'utf8',
        env: { ...process.env, PGPASSWORD: services.credentials.postgresAdmin },
      }).trim();
    try {
      // The cluster as earlier versions made it: trust on loopback, FerretDB connecting as the superuser.
      mkdirSync(cluster, { mode: 0o700 });
      if (isRoot) execFileSync('chown', [`${serviceUid()}`, cluster, dataDir]);
      const [initdb, initArgs] = asServiceUser(postgresBin('initdb'), ['-D', cluster, '-U', POSTGRES_ADMIN, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
      execFileSync(initdb, initArgs, { stdio: 'ignore' });
      const [single, singleArgs] = asServiceUser(postgresBin('postgres'), ['--single', '-D', cluster, 'postgres']);
      execFileSync(single, singleArgs, { input: 'CREATE DATABASE ferretdb;\n', stdio: ['pipe', 'ignore', 'ignore'] });
      execFileSync(single, [...singleArgs.slice(0, -1), 'ferretdb'], { input: 'CREATE TABLE old_table (_jsonb jsonb);\nINSERT INTO old_table VALUES (\'{"kept": true}\');\n', stdio: ['pipe', 'ignore', 'ignore'] });
      // Earlier versions ran PostgreSQL as root inside a user namespace: every file of it is root's.
      if (isRoot) execFileSync('chown', ['-R', '0:0', dataDir]);

      const services = await startServices({ dataDir });
      try {
        expect(readFileSync(join(cluster, 'pg_hba.conf'), 'utf8')).not.toMatch(/trust/);
        expect(ownerOf(services)).toBe(MONGO_USER);
        const stranger = asStranger(postgresBin('psql'), ['-h', '127.0.0.1', '-p', String(services.ports.postgres), '-U', POSTGRES_ADMIN, '-d', 'ferretdb', '-w', '-c', 'SELECT 1']);
        expect(stranger.status).not.toBe(0);
        const kept = execFileSync(postgresBin('psql'), ['-h', '127.0.0.1', '-p', String(services.ports.postgres), '-U', MONGO_USER, '-d', 'ferretdb', '-tA', '-c', "SELECT _jsonb->>'kept' FROM old_table"], {
          encoding: 'utf8',
          env: { ...process.env, PGPASSWORD: services.credentials.mongodb },
        });
        expect(kept.trim()).toBe('true');
      } finally {
        await services.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
