import request from 'supertest';
import { createApp } from '../src/api/app';
import { loadConfig } from '../src/config';
import { referencePhoto } from './support/fixtures';
import { configEnv, startStack, type Stack } from './support/stack';

const ADMIN_TOKEN = 'operator-token-for-tests-0123';

describe('operator routes: Bull Board and Prometheus metrics', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Attempt 1 is always rejected, attempt 2 passes: known attempt and verdict metrics.
    stack = await startStack({
      config: { ADMIN_TOKEN, AUTH_MODE: 'open' },
      gpu: { validate: ({ attempt }) => ({ passed: attempt >= 2, score: attempt / 2, checks: [], feedback: 'closer crop' }) },
    });
  });
  afterAll(() => stack.close());

  const admin = (path: string) => request(stack.app).get(path).auth('ops', ADMIN_TOKEN);

  it('keeps the dashboard behind operator credentials, separate from tenant keys', async () => {
    const anonymous = await request(stack.app).get('/admin/queues');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['www-authenticate']).toMatch(/^Basic/);
    expect((await request(stack.app).get('/admin/queues').auth('ops', 'wrong-password-xxxxxx')).status).toBe(401);
    expect((await request(stack.app).get('/admin/queues/api/queues')).status).toBe(401);
    const page = await admin('/admin/queues');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<div id="root">');
    const script = /<script[^>]+src="([^"]+)"/.exec(page.text)![1];
    const asset = await admin(script.startsWith('/') ? script : `/admin/queues/${script}`);
    expect([asset.status, asset.headers['content-type']]).toEqual([200, expect.stringMatching(/javascript/)]);
  });

  it("lists every queue of the product in the dashboard's API, the Python worker's included", async () => {
    const jobId = (await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg')).body.job_id;
    await stack.waitForJob(jobId);
    const res = await admin('/admin/queues/api/queues?activeQueue=portrait&status=completed&page=1');
    expect(res.status).toBe(200);
    const names = res.body.queues.map((q: { name: string }) => q.name);
    expect(names).toEqual(expect.arrayContaining(['portrait', 'generation', 'prompt', 'generate', 'portrait-generate', 'validate', 'report', 'notify']));
    const portrait = res.body.queues.find((q: { name: string }) => q.name === 'portrait');
    expect(JSON.stringify(portrait.jobs)).toContain(`portrait-${jobId}`);
  });

  it("shows a portrait job's flow tree: the orchestrator job with every step of every attempt under it", async () => {
    const jobId = (await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg')).body.job_id;
    await stack.waitForJob(jobId);
    const res = await admin(`/admin/queues/api/queues/portrait/portrait-${jobId}/flow`);
    expect(res.status).toBe(200);
    const root = res.body.flowRoot;
    expect(root).toMatchObject({ id: `portrait-${jobId}`, queueName: 'portrait', state: 'completed', dependencies: { processed: 6, failed: 0 } });
    // Attempt 1 was rejected here, so two rounds of the three steps hang under the orchestrator job.
    const children = root.children.map((c: { id: string; queueName: string; state: string }) => `${c.id}:${c.queueName}:${c.state}`).sort();
    expect(children).toEqual(
      // A portrait's generate step runs on the editing-model pool's queue.
      [1, 2].flatMap((a) => (['generate', 'prompt', 'validate'] as const).map((step) => `${jobId}-a${a}-${step}:${step === 'generate' ? 'portrait-generate' : step}:completed`)).sort(),
    );
  });

  it('serves Prometheus metrics to operators: HTTP latency by route, queue depths, jobs by status', async () => {
    expect((await request(stack.app).get('/metrics')).status).toBe(401);
    await request(stack.app).get('/parameters');
    const res = await admin('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.text).toMatch(/apex_http_request_duration_seconds_count\{method="GET",route="\/parameters",status="200"\} \d+/);
    expect(res.text).toMatch(/apex_queue_jobs\{queue="portrait",state="completed"\} [1-9]/);
    expect(res.text).toMatch(/apex_portrait_jobs\{status="completed"\} [1-9]/);
  });

  it('adds the workflow metrics the orchestrators record: step durations, GPU timings, attempts, pass rate', async () => {
    const jobId = (await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg')).body.job_id;
    expect((await stack.waitForJob(jobId)).status).toBe('completed');
    const text = (await admin('/metrics')).text;
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}()|.+]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('apex_step_duration_seconds_count{step="generate",outcome="completed"}')).toBeGreaterThanOrEqual(2);
    expect(value('apex_step_duration_seconds_count{step="validate",outcome="completed"}')).toBeGreaterThanOrEqual(2);
    // Reported by the GPU step itself (the real worker sends queueWait/loraLoad/denoise/upload).
    expect(value('apex_gpu_generate_phase_seconds_count{phase="denoise"}')).toBeGreaterThanOrEqual(2);
    expect(value('apex_gpu_generate_phase_seconds_bucket{phase="denoise",le="0.01"}')).toBe(value('apex_gpu_generate_phase_seconds_count{phase="denoise"}'));
    // Every job here took exactly two attempts.
    const finished = value('apex_portrait_attempts_count{status="completed"}');
    expect(finished).toBeGreaterThanOrEqual(1);
    expect([value('apex_portrait_attempts_bucket{status="completed",le="1"}'), value('apex_portrait_attempts_bucket{status="completed",le="2"}')]).toEqual([0, finished]);
    expect(value('apex_validations_total{result="passed"}')).toBe(finished);
    expect(value('apex_validations_total{result="rejected"}')).toBe(finished);
    expect(value('apex_validation_pass_ratio')).toBe(0.5);
  });
});

describe('a read-only dashboard', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ config: { ADMIN_TOKEN }, gpu: false, orchestrator: false });
  });
  afterAll(() => stack.close());

  it('is read-only unless ADMIN_READ_ONLY=false is set on purpose, and without ADMIN_TOKEN the routes are closed', async () => {
    const readOnly = async (app: typeof stack.app) =>
      (await request(app).get('/admin/queues/api/queues').auth('ops', ADMIN_TOKEN)).body.queues.map((q: { readOnlyMode: boolean }) => q.readOnlyMode);
    const { config, objects, queues, redis } = stack;
    expect(new Set(await readOnly(stack.app))).toEqual(new Set([true]));
    const writable = createApp({ config: loadConfig({ ...configEnv(config), ADMIN_READ_ONLY: 'false' }), objects, queues, redis });
    expect(new Set(await readOnly(writable))).toEqual(new Set([false]));
    const closed = createApp({ config: { ...config, ADMIN_TOKEN: undefined }, objects, queues, redis });
    const r = await request(closed).get('/admin/queues').auth('ops', ADMIN_TOKEN);
    expect([r.status, r.body.error.code]).toEqual([401, 'admin_unauthorized']);
  });
});
