import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Job, Queue } from 'bullmq';
import request from 'supertest';
import { loadConfig } from '../src/config';
import { createApiKey, revokeApiKey } from '../src/store/apiKeyModel';
import { JobModel } from '../src/store/jobModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

const ROOT = join(__dirname, '..');

describe('public API: keys, tenants, listing, idempotency, cancel', () => {
  let stack: Stack;
  let acme: string;
  let globex: string;
  beforeAll(async () => {
    // No GPU worker serves `prompt`: jobs stay queued at their first step, which cancel must stop.
    stack = await startStack({ config: { AUTH_MODE: 'required' }, gpuSteps: ['generate', 'validate', 'report'] });
    acme = `Bearer ${(await createApiKey('acme')).key}`;
    globex = `Bearer ${(await createApiKey('globex')).key}`;
  });
  afterAll(() => stack.close());

  const submit = async (auth: string, parameters: object = {}, headers: Record<string, string> = {}, photo?: Buffer) => {
    let req = request(stack.app).post('/jobs').set('Authorization', auth);
    for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
    return req.attach('image_file', photo ?? (await referencePhoto()), 'me.jpg').field('parameters', JSON.stringify(parameters));
  };

  it('requires a valid, unrevoked key on everything but /health', async () => {
    expect((await request(stack.app).get('/health')).status).not.toBe(401);
    const anonymous = await request(stack.app).get('/jobs');
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error).toMatchObject({ code: 'unauthorized', field: 'authorization' });
    expect(anonymous.headers['www-authenticate']).toBe('Bearer');
    expect((await request(stack.app).get('/parameters').set('Authorization', 'Bearer apx_0000000000000000_nope')).status).toBe(401);
    const { id, key } = await createApiKey('acme', 'to revoke');
    expect((await request(stack.app).get('/jobs').set('Authorization', `Bearer ${key}`)).status).toBe(200);
    await revokeApiKey(id);
    expect((await request(stack.app).get('/jobs').set('Authorization', `Bearer ${key}`)).status).toBe(401);
  });

  it('sends security headers', async () => {
    const res = await request(stack.app).get('/health');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['strict-transport-security']).toBeDefined();
  });

  it("keeps tenants apart: another tenant's job is a 404 and never listed", async () => {
    const jobId = (await submit(acme)).body.job_id;
    expect((await request(stack.app).get(`/jobs/${jobId}`).set('Authorization', acme)).status).toBe(200);
    const foreign = await request(stack.app).get(`/jobs/${jobId}`).set('Authorization', globex);
    expect(foreign.status).toBe(404);
    expect(foreign.body.error.code).toBe('job_not_found');
    expect((await request(stack.app).post(`/jobs/${jobId}/cancel`).set('Authorization', globex)).status).toBe(404);
    const listed = await request(stack.app).get('/jobs').set('Authorization', globex);
    expect(listed.body.jobs.map((j: any) => j.job_id)).not.toContain(jobId);
  });

  it('lists jobs newest first with stable cursor pages and a status filter', async () => {
    const created: string[] = [];
    for (let i = 0; i < 5; i++) created.push((await submit(globex)).body.job_id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await request(stack.app).get('/jobs').query({ limit: 2, ...(cursor ? { cursor } : {}) }).set('Authorization', globex);
      expect(page.status).toBe(200);
      expect(page.body.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.jobs.map((j: any) => j.job_id));
      cursor = page.body.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...created].reverse());
    const running = await request(stack.app).get('/jobs').query({ status: 'completed' }).set('Authorization', globex);
    expect(running.body.jobs).toEqual([]);
    const bad = await request(stack.app).get('/jobs').query({ limit: 0 }).set('Authorization', globex);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_query', field: 'limit' });
    expect((await request(stack.app).get('/jobs').query({ cursor: 'zz' }).set('Authorization', globex)).body.error.field).toBe('cursor');
  });

  it('Idempotency-Key: the same request returns the same job, a different one is a 422', async () => {
    const photo = await referencePhoto();
    const first = await submit(acme, { vibe: 'calm' }, { 'Idempotency-Key': 'order-17' }, photo);
    const again = await submit(acme, { vibe: 'calm' }, { 'Idempotency-Key': 'order-17' }, photo);
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.body.job_id).toBe(first.body.job_id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const different = await submit(acme, { vibe: 'friendly' }, { 'Idempotency-Key': 'order-17' }, photo);
    expect(different.status).toBe(422);
    expect(different.body.error).toMatchObject({ code: 'idempotency_key_reused', field: 'idempotency-key' });
    // Keys belong to a tenant: another tenant may use the same key for its own job.
    const other = await submit(globex, { vibe: 'calm' }, { 'Idempotency-Key': 'order-17' }, photo);
    expect(other.status).toBe(202);
    expect(other.body.job_id).not.toBe(first.body.job_id);
    expect(await JobModel.countDocuments({ 'parameters.vibe': 'calm' })).toBe(2);
  });

  it('cancels a queued job before its step runs, then refuses to cancel it again', async () => {
    const jobId = (await submit(acme)).body.job_id;
    await stack.waitForJob(jobId, (j) => j.status === 'running');
    const cancel = await request(stack.app).post(`/jobs/${jobId}/cancel`).set('Authorization', acme);
    expect(cancel.status).toBe(202);
    const job = await stack.waitForJob(jobId);
    expect(job.status).toBe('cancelled');
    const stepId = (job.attempts as any[])[0].steps.prompt.stepJobId;
    const promptQueue = new Queue('prompt', { connection: stack.redis, prefix: stack.config.QUEUE_PREFIX });
    expect(await Job.fromId(promptQueue, stepId)).toBeUndefined(); // removed, never run
    await promptQueue.close();
    const again = await request(stack.app).post(`/jobs/${jobId}/cancel`).set('Authorization', acme);
    expect(again.status).toBe(409);
    expect(again.body.error).toMatchObject({ code: 'not_cancellable', status: 'cancelled' });
  });

  it('npm run keys creates a key that the API accepts', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'scripts/keys.ts', 'create', '--tenant', 'initech'], {
      cwd: ROOT,
      env: { ...process.env, MONGO_URL: stack.config.MONGO_URL },
    }).toString();
    const key = /apx_\S+/.exec(out)![0];
    return request(stack.app).get('/jobs').set('Authorization', `Bearer ${key}`).expect(200);
  });
});

describe('rate limits and production safety', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ config: { AUTH_MODE: 'required', RATE_LIMIT_PER_MINUTE: '3' }, gpu: false, orchestrator: false });
  });
  afterAll(() => stack.close());

  it('limits requests per key in Redis and says when to come back', async () => {
    const key = `Bearer ${(await createApiKey('acme')).key}`;
    const other = `Bearer ${(await createApiKey('acme')).key}`;
    // The window is the calendar minute: start well inside one, so all five requests share it.
    const intoMinute = Date.now() % 60_000;
    if (intoMinute > 55_000) await new Promise((r) => setTimeout(r, 60_100 - intoMinute));
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(stack.app).get('/parameters').set('Authorization', key)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const limited = await request(stack.app).get('/parameters').set('Authorization', key);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await request(stack.app).get('/parameters').set('Authorization', other)).status).toBe(200);
  });

  it('refuses to start in production without required auth', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', AUTH_MODE: 'auto' })).toThrow(/AUTH_MODE: must be "required"/);
    expect(loadConfig({ NODE_ENV: 'production', AUTH_MODE: 'required' }).AUTH_MODE).toBe('required');
  });
});
