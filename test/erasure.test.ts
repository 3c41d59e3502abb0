import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import mongoose from 'mongoose';
import request from 'supertest';
import { appendErasures, readErasureLog } from '../src/flows/erasure/erasureLog';
import { replayErasureLog } from '../src/flows/erasure/erasureReplay';
import { addPendingErasure } from '../src/flows/erasure/pendingErasureSet';
import { retryPendingErasures } from '../src/flows/erasure/pendingErasures';
import { eraseTenant } from '../src/flows/erasure/tenantErasure';
import type { ErasureDeps } from '../src/flows/erasure/erasureTarget';
import { derivedId } from '../src/flows/ids';
import { jobEventsKey, pendingErasuresKey } from '../src/flows/redisKeys';
import { renderWorkflowMetrics } from '../src/flows/workflowMetrics';
import { ApiKeyModel, createApiKey } from '../src/store/apiKeyModel';
import { BatchModel } from '../src/store/batchModel';
import { JobModel } from '../src/store/jobModel';
import { startOrchestratorRole } from '../src/workers/orchestratorRole';
import { referencePhoto, SEED_PARAMETERS } from './support/fixtures';
import { captureLogs, dumpMongo, dumpRedis } from './support/secretScan';
import { createApp } from '../src/api/app';
import { configEnv, startStack, type Stack } from './support/stack';

const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const ERASURE_LOG = join(mkdtempSync(join(tmpdir(), 'apex-erasure-')), 'erasures.jsonl');
/** A portrait whose attire is `creative` renders slowly: long enough to delete it while it runs. */
const SLOW_ATTIRE = 'creative';

describe('erasure: DELETE, the erasure log and its replay, tenant erasure', () => {
  let stack: Stack;
  let acme: string;
  let globex: string;
  let receiver: http.Server;
  let webhookUrl: string;
  beforeAll(async () => {
    receiver = http.createServer((req, res) => void req.resume().on('end', () => res.end()));
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    stack = await startStack({
      // A short settle: a DELETE of a running job answers soon and leaves the rest to the orchestrator.
      config: { AUTH_MODE: 'required', WEBHOOK_SECRET, WEBHOOK_ALLOW_PRIVATE: 'true', ERASURE_LOG, ERASURE_SETTLE_MS: '300' },
      notifier: true,
      gpu: {
        generate: async (input, job) => {
          if (input.prompt.includes(SLOW_ATTIRE)) await new Promise((r) => setTimeout(r, 3000));
          return stack.gpu!.defaults.generate(input, job);
        },
      },
    });
    acme = `Bearer ${(await createApiKey('acme')).key}`;
    globex = `Bearer ${(await createApiKey('globex')).key}`;
  });
  afterAll(async () => {
    await stack.close();
    receiver.close();
  });

  const api = () => request(stack.app);
  const deps = (): ErasureDeps => ({ config: stack.config, redis: stack.redis, objects: stack.objects, queues: stack.queues });

  async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (done(value)) return value;
      if (Date.now() > deadline) throw new Error(`condition not met: ${JSON.stringify(value).slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Every place the id (or a text it held, such as its prompt) is still found: object keys in the bucket, any MongoDB document, any Redis key or value of the suite's prefix. */
  async function traces(id: string, ...texts: string[]): Promise<string[]> {
    const found: string[] = [];
    const mongo = await dumpMongo();
    // dumpRedis writes each key on one line and its value on the next.
    const redis = (await dumpRedis(stack.redis, stack.config.QUEUE_PREFIX)).split('\n');
    const objects = await stack.objects.list('', 100_000);
    for (const needle of [id, ...texts]) {
      found.push(...objects.filter((o) => o.key.includes(needle)).map((o) => `s3 ${o.key}`));
      if (mongo.includes(needle)) found.push(`mongodb …${mongo.slice(Math.max(0, mongo.indexOf(needle) - 300), mongo.indexOf(needle) + 100)}`);
      for (let i = 0; i < redis.length; i += 2) if (redis[i].includes(needle) || redis[i + 1]?.includes(needle)) found.push(`redis ${redis[i]}`);
    }
    return found;
  }

  async function submitJob(auth: string, opts: { attire?: string; idempotencyKey?: string; webhook?: boolean } = {}) {
    let req = api()
      .post('/jobs')
      .set('Authorization', auth)
      .attach('image_file', await referencePhoto(), 'me.jpg')
      .field('parameters', JSON.stringify({ ...SEED_PARAMETERS, resolution: '1k', attire: opts.attire ?? 'business_casual' }));
    if (opts.webhook) req = req.field('webhook_url', webhookUrl);
    if (opts.idempotencyKey) req = req.set('Idempotency-Key', opts.idempotencyKey);
    const res = await req;
    expect([202, 200]).toContain(res.status);
    return res.body.job_id as string;
  }

  it("DELETE /jobs/:id erases every trace of the job, only the caller's own, and frees its Idempotency-Key", async () => {
    const erased = await submitJob(acme, { idempotencyKey: 'portrait-1', webhook: true });
    const sameTenant = await submitJob(acme);
    const otherTenant = await submitJob(globex);
    for (const id of [erased, sameTenant, otherTenant]) await stack.waitForJob(id);
    await until(async () => (await api().get(`/jobs/${erased}/deliveries`).set('Authorization', acme)).body.deliveries, (d) => d.length >= 1);
    expect((await traces(erased)).length).toBeGreaterThan(0);

    expect((await api().delete(`/jobs/${erased}`).set('Authorization', globex)).status).toBe(404);
    expect((await api().get(`/jobs/${erased}`).set('Authorization', acme)).status).toBe(200);

    expect((await api().delete(`/jobs/${erased}`).set('Authorization', acme)).status).toBe(204);
    expect((await api().get(`/jobs/${erased}`).set('Authorization', acme)).status).toBe(404);
    expect((await api().delete(`/jobs/${erased}`).set('Authorization', acme)).status).toBe(404);
    expect(await traces(erased)).toEqual([]);

    for (const [id, auth] of [[sameTenant, acme], [otherTenant, globex]]) {
      const job = (await api().get(`/jobs/${id}`).set('Authorization', auth)).body;
      expect(job.status).toBe('completed');
      expect((await api().get(`/jobs/${id}/result`).set('Authorization', auth)).status).toBe(200);
      expect((await traces(id)).length).toBeGreaterThan(0);
    }
    // The key is free again: the same request creates a new job.
    const again = await submitJob(acme, { idempotencyKey: 'portrait-1', webhook: true });
    expect(again).not.toBe(erased);
    await stack.waitForJob(again);

    const logged = await readErasureLog(ERASURE_LOG);
    expect(logged).toContainEqual({ kind: 'job', id: erased, tenant: 'acme', at: expect.any(String) });
    expect(statSync(ERASURE_LOG).mode & 0o777).toBe(0o600);
    expect(readFileSync(ERASURE_LOG, 'utf8')).not.toContain('portrait'); // ids only: no parameters, no prompt
    expect(await renderWorkflowMetrics(stack.redis, stack.config.QUEUE_PREFIX)).toMatch(/apex_erasures_total\{kind="job",trigger="request"\} [1-9]/);
  });

  it('deleting a running job cancels it first, and its step finishing later re-creates nothing', async () => {
    const id = await submitJob(acme, { attire: SLOW_ATTIRE, webhook: true });
    await until(async () => stack.gpu!.callsFor(id, 'generate').length, (n) => n >= 1);
    expect((await api().delete(`/jobs/${id}`).set('Authorization', acme)).status).toBe(204);
    expect((await api().get(`/jobs/${id}`).set('Authorization', acme)).status).toBe(404);
    // The step still renders and uploads its image after the DELETE answered; the orchestrators erase it once it stops.
    await until(() => traces(id), (t) => t.length === 0, 30_000);
    expect(stack.gpu!.callsFor(id, 'validate')).toEqual([]); // cancelled: nothing ran after the step in hand
    await new Promise((r) => setTimeout(r, 1500));
    expect(await traces(id)).toEqual([]);
  });

  it('logs keep ids, never what a person wrote or a model said about them', async () => {
    const logs = captureLogs();
    try {
      const prompt = `a portrait of ${randomBytes(6).toString('hex')} by the sea`;
      const res = await api().post('/generations?wait=20').set('Authorization', acme).send({ prompt });
      expect(res.body.status).toBe('completed');
      const job = await submitJob(acme);
      await stack.waitForJob(job);
      const written = (await JobModel.findById(job).lean<{ attempts: { prompt: string }[] }>())!.attempts[0].prompt;
      expect((await api().delete(`/generations/${res.body.generation_id}`).set('Authorization', acme)).status).toBe(204);
      const text = logs.lines.join('');
      expect(text).toContain(res.body.generation_id);
      expect(text).not.toContain(prompt);
      expect(text).not.toContain(written);
    } finally {
      logs.stop();
    }
  });

  it('DELETE /generations/:id erases the generation and its images, only the caller\'s own', async () => {
    const post = (auth: string, key?: string) => {
      const req = api().post('/generations?wait=20').set('Authorization', auth);
      return (key ? req.set('Idempotency-Key', key) : req).send({ prompt: 'a lighthouse', width: 512, height: 512 });
    };
    const erased = (await post(acme, 'generation-1')).body;
    const kept = (await post(globex)).body;
    expect([erased.status, kept.status]).toEqual(['completed', 'completed']);
    expect((await api().delete(`/generations/${erased.generation_id}`).set('Authorization', globex)).status).toBe(404);
    expect((await api().delete(`/generations/${erased.generation_id}`).set('Authorization', acme)).status).toBe(204);
    expect((await api().get(`/generations/${erased.generation_id}`).set('Authorization', acme)).status).toBe(404);
    expect(await traces(erased.generation_id)).toEqual([]);
    expect((await fetch(erased.images[0].url)).status).toBe(404);
    expect((await fetch(kept.images[0].url)).status).toBe(200);
    const again = await post(acme, 'generation-1');
    expect([again.status, again.body.generation_id === erased.generation_id]).toEqual([200, false]);
  });

  it('DELETE /batches/:id erases the batch, every child it made and the inbox photos they came from', async () => {
    await stack.objects.put('inbox/acme/team/alice.jpg', await referencePhoto(), 'image/jpeg');
    await stack.objects.put('inbox/acme/team/notes.txt', Buffer.from('not a photo'), 'text/plain');
    await stack.objects.put('inbox/globex/team/bob.jpg', await referencePhoto(), 'image/jpeg');
    const create = (auth: string) => api().post('/batches').set('Authorization', auth).send({ target: { type: 'portraits_from_prefix', prefix: 'team/' } });
    const erased = (await create(acme)).body.batch_id;
    const kept = (await create(globex)).body.batch_id;
    for (const [id, auth] of [[erased, acme], [kept, globex]]) {
      await until(async () => (await api().get(`/batches/${id}`).set('Authorization', auth)).body.status, (s) => s === 'completed');
    }
    const children = (await api().get(`/batches/${erased}`).set('Authorization', acme)).body.items.map((i: { id: string }) => i.id);
    expect(children).toHaveLength(1);
    expect((await api().delete(`/batches/${erased}`).set('Authorization', globex)).status).toBe(404);
    expect((await api().delete(`/batches/${erased}`).set('Authorization', acme)).status).toBe(204);
    expect((await api().get(`/batches/${erased}`).set('Authorization', acme)).status).toBe(404);
    expect((await api().get(`/jobs/${children[0]}`).set('Authorization', acme)).status).toBe(404);
    for (const id of [erased, ...children]) expect(await traces(id)).toEqual([]);
    expect((await stack.objects.list('inbox/acme/team/', 10)).map((o) => o.key)).toEqual([]);
    expect((await stack.objects.list('inbox/globex/team/', 10)).map((o) => o.key)).toEqual(['inbox/globex/team/bob.jpg']);
    const keptBatch = (await api().get(`/batches/${kept}`).set('Authorization', globex)).body;
    expect(keptBatch.counts).toEqual({ completed: 1 });

    // A child erased on its own leaves its batch, which goes on without it.
    expect((await api().delete(`/jobs/${keptBatch.items[0].id}`).set('Authorization', globex)).status).toBe(204);
    expect(await traces(keptBatch.items[0].id)).toEqual([]);
    expect((await api().get(`/batches/${kept}`).set('Authorization', globex)).body).toMatchObject({ status: 'completed', total: 0, counts: {} });
  });

  it("a child erased on its own takes its prompt out of its batch's document and BullMQ job", async () => {
    const prompt = `a castle of ${randomBytes(6).toString('hex')}`;
    const kept = `a harbour of ${randomBytes(6).toString('hex')}`;
    const batchId = (await api().post('/batches').set('Authorization', acme).send({ target: { type: 'generations', requests: [{ prompt, width: 256, height: 256 }, { prompt: kept, width: 256, height: 256 }] } })).body.batch_id;
    const batch = await until(async () => (await api().get(`/batches/${batchId}`).set('Authorization', acme)).body, (b) => b.status === 'completed');
    const child = batch.items[0].id;
    expect((await traces(child, prompt)).length).toBeGreaterThan(0);
    expect((await api().delete(`/generations/${child}`).set('Authorization', acme)).status).toBe(204);
    expect(await traces(child, prompt)).toEqual([]);
    const after = (await api().get(`/batches/${batchId}`).set('Authorization', acme)).body;
    expect(after.items.map((i: { id: string }) => i.id)).toEqual([batch.items[1].id]);
    expect(after.target.requests.map((r: { prompt: string }) => r.prompt)).toEqual(['[erased]', kept]);
  });

  it('DELETE /batches/:id while it fans out erases every child it made, and its fan-out leaves nothing behind', async () => {
    for (let i = 0; i < 24; i++) await stack.objects.put(`inbox/acme/crowd/p${i}.jpg`, await referencePhoto(), 'image/jpeg');
    const inbox = await stack.objects.list('inbox/acme/crowd/', 100);
    const batchId = (await api().post('/batches').set('Authorization', acme).send({ target: { type: 'portraits_from_prefix', prefix: 'crowd/' } })).body.batch_id;
    const children = inbox.map((o) => derivedId(batchId, o.key, o.etag));
    // Some children exist, and the fan-out has not written its items yet.
    await until(() => JobModel.countDocuments({ _id: { $in: children } }), (n) => n >= 2, 60_000);
    expect((await BatchModel.findById(batchId).lean<{ items: unknown[] }>())!.items).toEqual([]);
    expect((await api().delete(`/batches/${batchId}`).set('Authorization', acme)).status).toBe(204);
    for (const id of [batchId, ...children]) await until(() => traces(id), (t) => t.length === 0, 30_000);
    // A fan-out or step finishing late re-creates nothing.
    await new Promise((r) => setTimeout(r, 2500));
    for (const id of [batchId, ...children]) expect(await traces(id)).toEqual([]);
    expect(await JobModel.countDocuments({ _id: { $in: children } })).toBe(0);
  });

  it('a hand-edited erasure log line that names no valid id is skipped, and the rest is still replayed', async () => {
    const id = await submitJob(acme);
    await stack.waitForJob(id);
    const document = await JobModel.collection.findOne({ _id: new mongoose.Types.ObjectId(id) });
    expect((await api().delete(`/jobs/${id}`).set('Authorization', acme)).status).toBe(204);
    appendFileSync(ERASURE_LOG, JSON.stringify({ kind: 'job', id: 'not-an-object-id', tenant: 'acme', at: new Date().toISOString() }) + '\n');
    await JobModel.collection.insertOne(document!);
    const logs = captureLogs();
    try {
      expect(await replayErasureLog(deps())).toMatchObject({ erasedAgain: 1 });
      expect(logs.lines.join('')).toMatch(/"line":\d+,"message":"erasure log line skipped"/);
    } finally {
      logs.stop();
    }
    expect(await JobModel.exists({ _id: id })).toBeNull();
  });

  it("the replay of a tenant's erasure deletes the inbox photos a restore brought back, not those put there since", async () => {
    await stack.objects.put('inbox/umbrella/old/dave.jpg', await referencePhoto(), 'image/jpeg');
    await new Promise((r) => setTimeout(r, 1100)); // object times have a second's precision
    // The tenant was erased now; the backup restored afterwards held its photo (a restore keeps the object's time).
    await appendErasures(ERASURE_LOG, [{ kind: 'tenant', id: 'umbrella', tenant: 'umbrella' }], new Date());
    await new Promise((r) => setTimeout(r, 1100));
    await stack.objects.put('inbox/umbrella/new/erin.jpg', await referencePhoto(), 'image/jpeg');
    const replay = await replayErasureLog(deps());
    expect(replay.tenantsErasedAgain).toBe(1);
    expect((await stack.objects.list('inbox/umbrella/', 10)).map((o) => o.key)).toEqual(['inbox/umbrella/new/erin.jpg']);
    expect((await replayErasureLog(deps())).tenantsErasedAgain).toBe(0);
  });

  it('two orchestrators sweeping the same pending erasure at once: exactly one of them runs it', async () => {
    const target = { kind: 'job' as const, id: randomBytes(12).toString('hex'), tenant: 'acme' };
    await addPendingErasure(deps(), target, 0);
    let passes = 0;
    const slowPass = async () => {
      passes++;
      await new Promise((r) => setTimeout(r, 200));
      return false; // still running
    };
    const now = Date.now() + 5000; // due for both; their clocks differ by a few milliseconds
    await Promise.all([retryPendingErasures(deps(), now, slowPass), retryPendingErasures(deps(), now + 7, slowPass)]);
    expect(passes).toBe(1);
    await stack.redis.zremrangebyscore(pendingErasuresKey(stack.config.QUEUE_PREFIX), '-inf', '+inf');
  });

  it('the replay erases again what a restore brought back, and changes nothing when nothing came back', async () => {
    const id = await submitJob(acme);
    await stack.waitForJob(id);
    // What a backup taken now holds of the job: its document, its photo, its event log.
    const document = await JobModel.collection.findOne({ _id: new mongoose.Types.ObjectId(id) });
    const referenceKey = (document!.reference as { key: string }).key;
    const photo = (await stack.objects.getBuffer(referenceKey))!;
    expect((await api().delete(`/jobs/${id}`).set('Authorization', acme)).status).toBe(204);
    expect(await traces(id)).toEqual([]);

    // The backup restored: the same document, object and Redis key again.
    await JobModel.collection.insertOne(document!);
    await stack.objects.put(referenceKey, photo, 'image/jpeg');
    await stack.redis.xadd(jobEventsKey(stack.config.QUEUE_PREFIX, id), '*', 'type', 'status', 'data', '{"status":"completed"}');
    expect((await api().get(`/jobs/${id}`).set('Authorization', acme)).status).toBe(200);

    // An orchestrator starting on the restored data replays the log.
    const orchestrator = startOrchestratorRole(stack.config);
    const replay = await orchestrator.erasureReplay;
    await orchestrator.close();
    expect(replay).toMatchObject({ erasedAgain: 1 });
    expect(await traces(id)).toEqual([]);
    expect((await api().get(`/jobs/${id}`).set('Authorization', acme)).status).toBe(404);

    const mongoBefore = await dumpMongo();
    const objectsBefore = await stack.objects.list('', 100_000);
    expect(await replayErasureLog(deps())).toEqual({ logged: expect.any(Number), erasedAgain: 0, tenantsErasedAgain: 0 });
    expect(await dumpMongo()).toBe(mongoBefore);
    expect(await stack.objects.list('', 100_000)).toEqual(objectsBefore);
  });

  it('npm run keys -- erase-tenant erases the tenant whole; a replay erases a restored copy but not a new tenant of the same name', async () => {
    const initech = `Bearer ${(await createApiKey('initech')).key}`;
    const job = await submitJob(initech, { webhook: true });
    const generation = (await api().post('/generations?wait=20').set('Authorization', initech).send({ prompt: 'a red boat' })).body.generation_id;
    await stack.objects.put('inbox/initech/later/carol.jpg', await referencePhoto(), 'image/jpeg');
    const schedule = (await api().post('/schedules').set('Authorization', initech).send({ cron: '0 6 * * 1', tz: 'UTC', target: { type: 'portraits_from_prefix', prefix: 'later/' } })).body.schedule_id;
    await stack.waitForJob(job);
    const keyDocument = await ApiKeyModel.collection.findOne({ tenant: 'initech' });
    const kept = await submitJob(globex);
    await stack.waitForJob(kept);

    const keys = await promisify(execFile)('npx', ['tsx', 'scripts/keys.ts', 'erase-tenant', '--tenant', 'initech'], {
      cwd: join(__dirname, '..'),
      env: { ...process.env, ...configEnv(stack.config) },
    });
    expect(keys.stdout).toMatch(/erased tenant initech: 1 keys, 1 schedules, 0 batches, 1 jobs, 1 generations, 1 inbox photos/);
    expect((await api().get('/jobs').set('Authorization', initech)).status).toBe(401);
    for (const id of [job, generation, schedule]) expect(await traces(id)).toEqual([]);
    // Its GPU budget's and GPU dispatch's counts name it too (its generation was charged).
    expect(await stack.redis.keys(`${stack.config.QUEUE_PREFIX}:gpu-*:initech*`)).toEqual([]);
    expect(await dumpMongo()).not.toContain('initech');
    expect(await stack.objects.list('inbox/initech/', 10)).toEqual([]);
    expect(await stack.queues.get('schedule').getJobScheduler(schedule)).toBeUndefined();
    expect(await readErasureLog(ERASURE_LOG)).toContainEqual({ kind: 'tenant', id: 'initech', tenant: 'initech', at: expect.any(String) });
    expect((await api().get(`/jobs/${kept}`).set('Authorization', globex)).body.status).toBe('completed');

    // A restore brings the old key back; meanwhile a new tenant of the same name was created.
    await ApiKeyModel.collection.insertOne(keyDocument!);
    const newcomer = await createApiKey('initech');
    const replay = await replayErasureLog(deps());
    expect(replay.tenantsErasedAgain).toBe(1);
    expect(await ApiKeyModel.exists({ _id: keyDocument!._id })).toBeNull();
    expect(await ApiKeyModel.exists({ _id: newcomer.id })).not.toBeNull();
  });
});

describe('erasing the last tenant of an AUTH_MODE=auto deployment', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ gpu: false, orchestrator: false });
  });
  afterAll(() => stack.close());

  it('keeps the API closed after a restart, and keeps no trace of the tenant', async () => {
    const key = `Bearer ${(await createApiKey('solo')).key}`;
    expect((await request(stack.app).get('/jobs').set('Authorization', key)).status).toBe(200);
    const done = await eraseTenant({ config: stack.config, redis: stack.redis, objects: stack.objects, queues: stack.queues }, 'solo', 'tenant');
    expect(done.keys).toBe(1);
    // An API process starting now, on the same database, finds no key.
    const restarted = createApp({ config: stack.config, objects: stack.objects, queues: stack.queues, redis: stack.redis });
    expect((await request(restarted).get('/jobs')).status).toBe(401);
    expect(await dumpMongo()).not.toContain('solo');
  });
});
