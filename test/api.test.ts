import request from 'supertest';
import sharp from 'sharp';
import { Redis } from 'ioredis';
import { createApp } from '../src/api/app';
import mongoose from 'mongoose';
import { connectMongo } from '../src/store/mongo';
import { ObjectStore } from '../src/store/objectStore';
import { referencePhoto, SEED_PARAMETERS } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

describe('jobs API', () => {
  let stack: Stack;
  afterEach(() => stack?.close());

  it('accepts the seed request, stores an upright metadata-free reference and shows live progress', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    stack = await startStack({ gpu: { prompt: async () => (await held, { prompt: 'a portrait' }) } });
    // 600x480 stored sideways: EXIF orientation 6 says "rotate 90° to view".
    const sideways = await referencePhoto({ width: 600, height: 480, exifOrientation: 6 });

    const created = await request(stack.app)
      .post('/jobs')
      .attach('image_file', sideways, 'reference.jpg')
      .field('parameters', JSON.stringify(SEED_PARAMETERS));
    expect(created.status).toBe(202);
    expect(created.body).toEqual({ job_id: expect.stringMatching(/^[0-9a-f]{24}$/), status: 'pending', message: expect.any(String) });
    const jobId = created.body.job_id;

    const running = await stack.waitForJob(jobId, (j) => (j.attempts as any[])[0]?.steps?.prompt?.status === 'queued');
    expect(running.status).toBe('running');
    const live = (await request(stack.app).get(`/jobs/${jobId}`)).body;
    expect(live).toMatchObject({ status: 'running', parameters: SEED_PARAMETERS, attempts: [{ number: 1, status: 'running' }] });
    expect(live.attempts[0].steps.prompt).toMatchObject({ status: 'queued', step_job_id: `${jobId}-a1-prompt` });
    expect((await request(stack.app).get(`/jobs/${jobId}/result`)).body.error).toMatchObject({ code: 'not_ready', status: 'running' });

    const stored = await stack.objects.getBuffer(live.reference_image.key);
    const meta = await sharp(stored!).metadata();
    expect([meta.width, meta.height]).toEqual([480, 600]);
    expect(meta.orientation).toBeUndefined();
    expect(meta.exif).toBeUndefined();

    release();
    const done = await stack.waitForJob(jobId);
    expect(done.status).toBe('completed');
    const image = await sharp((await request(stack.app).get(`/jobs/${jobId}/result`).buffer(true)).body).metadata();
    expect([image.width, image.height]).toEqual([3264, 4096]); // "4k"
  });

  it('lists the parameter vocabulary with its defaults', async () => {
    stack = await startStack({ gpu: false, orchestrator: false });
    const res = await request(stack.app).get('/parameters');
    expect(res.status).toBe(200);
    expect(Object.keys(res.body.purpose)).toContain('professional_linkedin');
    expect(res.body.defaults).toEqual({
      purpose: 'professional_linkedin',
      attire: 'business_casual',
      background: 'neutral_studio',
      vibe: 'confident',
      lighting: 'studio_softbox',
      resolution: '1k',
    });
  });

  it('GET /health checks every dependency for real and names the one that is down', async () => {
    stack = await startStack({ gpu: false, orchestrator: false });
    const ok = await request(stack.app).get('/health');
    expect(ok.status).toBe(200);
    expect(ok.body.checks).toEqual({ redis: { ok: true }, mongodb: { ok: true }, s3: { ok: true } });

    // The same app wired to an S3 endpoint and a Redis where nothing listens: real refused connections.
    const objects = ObjectStore.fromConfig({ ...stack.config, S3_ENDPOINT: 'http://127.0.0.1:9' });
    const redis = new Redis('redis://127.0.0.1:9', { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    const app = createApp({ config: stack.config, objects, queues: stack.queues, redis });
    const down = await request(app).get('/health');
    redis.disconnect();
    expect(down.status).toBe(503);
    expect(down.body.checks).toMatchObject({ redis: { ok: false }, mongodb: { ok: true }, s3: { ok: false } });
    expect(down.body.error).toMatchObject({ code: 'dependency_unavailable', field: 'redis', message: 'unavailable: redis, s3' });
  });
});

describe('while MongoDB is unreachable', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ gpu: false, orchestrator: false });
  });
  afterAll(() => stack.close());

  it('answers 503 naming the dependency, with Retry-After, and recovers once it is back', async () => {
    await mongoose.disconnect();
    const down = await request(stack.app).get('/jobs/0123456789abcdef01234567');
    expect(down.status).toBe(503);
    expect(down.body.error).toMatchObject({ code: 'dependency_unavailable', field: 'mongodb' });
    expect(down.headers['retry-after']).toBe('5');
    await connectMongo(stack.config.MONGO_URL);
    expect((await request(stack.app).get('/jobs/0123456789abcdef01234567')).status).toBe(404);
  });
});
