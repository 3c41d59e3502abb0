/**
 * `npm start` keeps its data: real processes all the way (the npm scripts themselves, PostgreSQL +
 * FerretDB, Redis with AOF, MinIO, the API, orchestrator, notifier and the Python GPU worker on tiny
 * models). A key made with `npm run keys`, a finished job and its image survive a stop and a start;
 * a job queued just before the stop finishes after the start; a second deployment runs beside the
 * first; `npm run backup` / `npm run restore` carry all of it, the queues' Redis data included, into
 * another data directory (and, with --force, over one, moving it aside), and a job erased after
 * the backup stays erased after the restore.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { freePort } from '../scripts/processes';
import { referencePhoto } from './support/fixtures';
import { parseSse } from './support/serverSentEvents';

jest.setTimeout(15 * 60_000);

const ROOT = join(__dirname, '..');
const TERMINAL = ['completed', 'failed', 'failed_validation', 'cancelled'];

type Deployment = { home: string; env: NodeJS.ProcessEnv; api: string };

async function deploymentAt(home: string): Promise<Deployment> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    APEX_HOME: home,
    PORT: String(port),
    APEX_REDIS_PORT: String(await freePort()),
    APEX_POSTGRES_PORT: String(await freePort()),
    APEX_MONGO_PORT: String(await freePort()),
    APEX_S3_PORT: String(await freePort()),
    APEX_S3_CONSOLE_PORT: String(await freePort()),
    APEX_FERRETDB_DEBUG_PORT: String(await freePort()),
    LOG_SILENT: '0',
  };
  // The suite's own services must not leak into the deployment's configuration.
  for (const name of ['REDIS_URL', 'MONGO_URL', 'S3_ENDPOINT', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'QUEUE_PREFIX', 'S3_BUCKET']) delete env[name];
  return { home, env, api: `http://127.0.0.1:${port}` };
}

const running = new Set<ChildProcess>();
/** Starts during which the API answered /health before running.json announced the deployment. */
const answeredUnannounced: string[] = [];

/** `npm start`, resolved once it prints ready. */
function start(d: Deployment): Promise<ChildProcess> {
  const child = spawn('npm', ['start'], { cwd: ROOT, env: d.env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  // While it starts, the admin commands must find it whenever the API already answers.
  let ready = false;
  const watch = async () => {
    while (!ready && child.exitCode === null) {
      const answers = await fetch(`${d.api}/health`).then((r) => r.ok, () => false);
      if (answers && !existsSync(join(d.home, 'running.json'))) answeredUnannounced.push(d.home);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  void watch();
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-20_000);
      if (output.includes('[start] ready:')) {
        ready = true;
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`npm start exited with ${code} before it was ready:\n${output}`)));
  });
}

/** SIGTERM to `npm start`, as a service manager sends it; resolves with the exit code. */
function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

function npmRun(d: Deployment, args: string[]): string {
  const result = spawnSync('npm', ['run', '--silent', ...args], { cwd: ROOT, env: d.env, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run ${args.join(' ')} exited with ${result.status}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

async function submit(d: Deployment, key: string): Promise<string> {
  const form = new FormData();
  form.append('image_file', new Blob([new Uint8Array(await referencePhoto())], { type: 'image/jpeg' }), 'me.jpg');
  form.append('parameters', JSON.stringify({ resolution: '1k' }));
  const res = await fetch(`${d.api}/jobs`, { method: 'POST', body: form, headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(202);
  return ((await res.json()) as { job_id: string }).job_id;
}

async function getJob(d: Deployment, key: string, id: string) {
  const res = await fetch(`${d.api}/jobs/${id}`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as { status: string; finished_at: string | null; attempts: { number: number; image_url: string | null; images: { key: string }[] }[] };
}

async function waitForTerminal(d: Deployment, key: string, id: string) {
  for (;;) {
    const job = await getJob(d, key, id);
    if (TERMINAL.includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The ids of a finished job's events: Redis stream ids, which only the job's own Redis data can give back. */
async function eventIds(d: Deployment, key: string, id: string) {
  const res = await fetch(`${d.api}/jobs/${id}/events`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return parseSse(await res.text()).map((e) => e.id);
}

async function imageSize(d: Deployment, key: string, path: string) {
  const res = await fetch(`${d.api}${path}`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  const { width, height } = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
  return { width, height };
}

describe('npm start: a local deployment that keeps its data', () => {
  const homes: string[] = [];
  const newHome = () => {
    const home = mkdtempSync(join(tmpdir(), 'apex-home-'));
    homes.push(home);
    return home;
  };

  afterAll(async () => {
    await Promise.all([...running].map(stop));
    for (const home of homes) rmSync(home, { recursive: true, force: true });
  });

  it('keeps keys, jobs, images and queued work across a stop and a start, beside a second deployment, and through a backup', async () => {
    const a = await deploymentAt(newHome());
    let deploymentA = await start(a);

    // The admin command finds the running deployment through APEX_HOME alone.
    const created = npmRun(a, ['keys', '--', 'create', '--tenant', 'acme']);
    const key = /apx_\S+/.exec(created)![0];
    const firstJobId = await submit(a, key);
    const finished = await waitForTerminal(a, key, firstJobId);
    const imagePath = finished.attempts[0].image_url!;
    const imageBefore = await imageSize(a, key, imagePath);

    // A second deployment on other ports with another data directory runs beside the first, with its own data.
    const b = await deploymentAt(newHome());
    const deploymentB = await start(b);
    expect((await fetch(`${b.api}/health`)).status).toBe(200);
    expect((await fetch(`${b.api}/jobs/${firstJobId}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
    expect((await fetch(`${a.api}/health`)).status).toBe(200);
    // Its port is taken while it runs: a third start on the same ports says so instead of half-starting.
    const clash = spawnSync('npm', ['start'], { cwd: ROOT, env: { ...b.env, APEX_HOME: newHome() }, encoding: 'utf8' });
    expect(clash.status).toBe(1);
    expect(clash.stderr).toMatch(/port \d+ \(PORT, the API\) is already in use on 127\.0\.0\.1/);
    const servicePortClash = spawnSync('npm', ['start'], { cwd: ROOT, env: { ...b.env, APEX_HOME: newHome(), PORT: String(await freePort()) }, encoding: 'utf8' });
    expect(servicePortClash.status).toBe(1);
    expect(servicePortClash.stderr).toMatch(/port \d+ \(APEX_\w+_PORT\) is already in use on 127\.0\.0\.1/);
    expect(await stop(deploymentB)).toBe(0);

    // Queued just before the stop, finished after the start.
    const queuedId = await submit(a, key);
    expect(await stop(deploymentA)).toBe(0);
    expect(existsSync(join(a.home, 'running.json'))).toBe(false);
    const restartedAt = Date.now();
    deploymentA = await start(a);
    const again = await getJob(a, key, firstJobId);
    expect(again.status).toBe(finished.status);
    expect(again.attempts.map((t) => t.images.map((i) => i.key))).toEqual(finished.attempts.map((t) => t.images.map((i) => i.key)));
    expect(await imageSize(a, key, imagePath)).toEqual(imageBefore);
    const queuedEnd = await waitForTerminal(a, key, queuedId);
    expect(TERMINAL).toContain(queuedEnd.status);
    expect(Date.parse(queuedEnd.finished_at!)).toBeGreaterThan(restartedAt); // it was still unfinished at the stop
    expect(npmRun(a, ['keys', '--', 'list'])).toContain('acme');

    // Backup while it runs, restore into another directory, start that one: the same job, image and key.
    const eventsBefore = await eventIds(a, key, firstJobId);
    expect(eventsBefore.length).toBeGreaterThan(3);
    const erasedId = await submit(a, key);
    await waitForTerminal(a, key, erasedId);
    const archive = join(newHome(), 'backup.tar.gz');
    npmRun(a, ['backup', '--', archive]);
    expect(statSync(archive).mode & 0o777).toBe(0o600);
    // Erased after the backup was taken: no restore of that backup may bring it back.
    const erased = await fetch(`${a.api}/jobs/${erasedId}`, { method: 'DELETE', headers: { authorization: `Bearer ${key}` } });
    expect(erased.status).toBe(204);
    expect(await stop(deploymentA)).toBe(0);
    const c = await deploymentAt(newHome());
    npmRun(c, ['restore', '--', archive]);
    const refused = spawnSync('npm', ['run', '--silent', 'restore', '--', archive], { cwd: ROOT, env: c.env, encoding: 'utf8' });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('already holds a deployment');
    // --force moves what is there aside first, then restores; it keeps the present erasure log,
    // here A's, carried over as the README says for a restore onto another machine.
    copyFileSync(join(a.home, 'erasures.jsonl'), join(c.home, 'erasures.jsonl'));
    const forced = spawnSync('npm', ['run', '--silent', 'restore', '--', archive, '--force'], { cwd: ROOT, env: c.env, encoding: 'utf8' });
    expect(forced.status).toBe(0);
    const aside = /moved the existing deployment to (\S+)/.exec(forced.stderr)![1];
    homes.push(aside);
    expect(existsSync(join(aside, 'secrets.json'))).toBe(true);
    const deploymentC = await start(c);
    const restored = await getJob(c, key, firstJobId);
    expect(restored.status).toBe(finished.status);
    expect(await imageSize(c, key, imagePath)).toEqual(imageBefore);
    expect(await eventIds(c, key, firstJobId)).toEqual(eventsBefore); // the Redis part came back too
    expect((await getJob(c, key, queuedId)).status).toMatch(new RegExp(TERMINAL.join('|')));
    expect((await fetch(`${c.api}/jobs/${erasedId}`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(404);
    expect(await stop(deploymentC)).toBe(0);
    expect(answeredUnannounced).toEqual([]);
  });
});
