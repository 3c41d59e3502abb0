import type { ChildProcess } from 'node:child_process';
import sharp from 'sharp';
import request from 'supertest';
import type { PixelProvenance } from '../src/flows/contracts/generateStep';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import { buildTinyModels, startTinyGpuWorker, stopProcess } from './support/workerProcess';


/**
 * How the pixels were made, as a GPU worker reports it: what the scripted worker answers for a
 * step that asked for `upscale` (the real worker's own answers are the end-to-end suite's subject).
 */
const reported = (width: number, height: number, upscale = 1): PixelProvenance =>
  upscale === 1
    ? { nativeWidth: width, nativeHeight: height, method: 'native', factor: 1, seconds: 0 }
    : { nativeWidth: width / upscale, nativeHeight: height / upscale, method: 'super_resolution', factor: upscale, upscalers: [{ model: 'RealESRGAN_x4plus.pth', scale: 4 }], seconds: 1.25 };

describe('upscale factors and how the pixels were made, through the API (scripted GPU worker)', () => {
  let stack: Stack;
  let reportPixels = true;
  beforeAll(async () => {
    stack = await startStack({
      config: { MAX_ATTEMPTS: '1' },
      gpu: {
        generate: async (input, job) => {
          const result = await stack.gpu!.defaults.generate(input, job);
          return reportPixels ? { ...result, pixels: reported(input.width, input.height, input.upscale) } : result;
        },
      },
    });
  });
  afterAll(() => stack.close());

  const generate = (body: object) => request(stack.app).post('/generations?wait=20').send({ prompt: 'a lighthouse at dusk', ...body });

  it('a generation asking for x2 renders its width and height and comes out twice as large, its record saying how', async () => {
    const res = await generate({ width: 512, height: 768, upscale: 2 });
    expect(res.status).toBe(200);
    expect(stack.gpu!.callsFor(res.body.generation_id, 'generate')[0].input).toMatchObject({ width: 1024, height: 1536, upscale: 2 });
    expect(res.body.request).toMatchObject({ width: 512, height: 768, upscale: 2 });
    expect(res.body.images[0]).toMatchObject({ width: 1024, height: 1536 });
    expect(res.body.pixels).toEqual({
      native_width: 512, native_height: 768, method: 'super_resolution', factor: 2,
      upscalers: [{ model: 'RealESRGAN_x4plus.pth', scale: 4 }], seconds: 1.25,
    });
    const again = await request(stack.app).get(`/generations/${res.body.generation_id}`);
    expect(again.body.pixels).toEqual(res.body.pixels);
  });

  it.each([
    [{}, { width: 1024, height: 1024 }],
    [{ upscale: 1 }, { width: 1024, height: 1024, upscale: 1 }],
    [{ upscale: 4 }, { width: 4096, height: 4096, upscale: 4 }],
    [{ width: 2048, height: 1024, upscale: 2 }, { width: 4096, height: 2048, upscale: 2 }],
    [{ width: 256, height: 1024, upscale: 4 }, { width: 1024, height: 4096, upscale: 4 }],
  ])('accepts %j and the step is asked for %j', async (body, input) => {
    const res = await generate(body);
    expect(res.status).toBe(200);
    const sent = stack.gpu!.callsFor(res.body.generation_id, 'generate')[0].input;
    expect({ width: sent.width, height: sent.height, ...(sent.upscale ? { upscale: sent.upscale } : {}) }).toEqual(input);
  });

  it.each([
    [{ upscale: 0 }, 'must be 1, 2 or 4'],
    [{ upscale: 3 }, 'must be 1, 2 or 4'],
    [{ upscale: 8 }, 'must be 1, 2 or 4'],
    [{ upscale: -2 }, 'must be 1, 2 or 4'],
    [{ upscale: 1.5 }, 'must be 1, 2 or 4'],
    [{ upscale: '2' }, 'must be 1, 2 or 4'],
    [{ upscale: null }, 'must be 1, 2 or 4'],
    [{ upscale: true }, 'must be 1, 2 or 4'],
    [{ width: 2048, upscale: 4 }, '4 would make 8192x4096 images; width and height times upscale must be at most 4096'],
    [{ height: 1040, upscale: 4 }, '4 would make 4096x4160 images'],
  ])('refuses %j naming upscale: %s', async (body, message) => {
    const res = await request(stack.app).post('/generations').send({ prompt: 'x', ...body });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_generation', field: 'upscale', message: expect.stringContaining(message) });
  });

  it("refuses a batch's generation whose upscale makes its images too large, naming it", async () => {
    const requests = [{ prompt: 'fine', upscale: 2 }, { prompt: 'too large', width: 2048, upscale: 4 }];
    const res = await request(stack.app).post('/batches').send({ target: { type: 'generations', requests } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_batch', field: 'target.requests.1.upscale' });
  });

  it("a portrait attempt's record says how its pixels were made", async () => {
    const res = await request(stack.app)
      .post('/jobs')
      .attach('image_file', await referencePhoto(), 'me.jpg')
      .field('parameters', JSON.stringify({ resolution: '2k' }));
    expect(res.status).toBe(202);
    await stack.waitForJob(res.body.job_id);
    const attempt = (await request(stack.app).get(`/jobs/${res.body.job_id}`)).body.attempts[0];
    expect(attempt.images[0]).toMatchObject({ width: 1632, height: 2048 });
    expect(attempt.pixels).toEqual({ native_width: 1632, native_height: 2048, method: 'native', factor: 1, upscalers: [], seconds: 0 });
  });

  it('a worker that does not report its pixels (one older than the upscaler) leaves them null', async () => {
    reportPixels = false;
    try {
      const res = await generate({});
      expect(res.status).toBe(200);
      expect(res.body.pixels).toBeNull();
    } finally {
      reportPixels = true;
    }
  });
});

/**
 * The real Python worker (`python -m apex_gpu_worker --role all`) on the tiny models, the tiny
 * Real-ESRGAN x2/x4 included, at the production native budget (1.05 MP).
 */
describe('a 4k portrait end to end: API, orchestrator and the Python worker with a tiny Real-ESRGAN', () => {
  let stack: Stack;
  let gpu: ChildProcess | undefined;
  const startGpuWorker = (env: Record<string, string> = {}) =>
    startTinyGpuWorker(stack.config, {
      // The product's native budget, so 4k is 816×1024 rendered and then ×4.
      APEX_GPU_NATIVE_MAX_MEGAPIXELS: '1.05',
      APEX_GPU_DEFAULT_STEPS: '2',
      // Random weights draw no face (nor, through a random upscaler, much contrast): the verdict
      // gates on the final image's size; every other check still runs and is recorded.
      APEX_GPU_GATING_CHECKS: '["dimensions"]',
      APEX_GPU_PASS_SCORE: '0',
      ...env,
    });

  beforeAll(async () => {
    buildTinyModels();
    stack = await startStack({ gpu: false, config: { MAX_ATTEMPTS: '1' } });
  });
  afterEach(async () => {
    if (gpu) await stopProcess(gpu);
    gpu = undefined;
  });
  afterAll(() => stack.close());

  it('renders 816x1024, goes up x4 with the super-resolution model to 3264x4096, and validates the final image', async () => {
    gpu = await startGpuWorker();
    const res = await request(stack.app)
      .post('/jobs')
      .attach('image_file', await referencePhoto(), 'me.jpg')
      .field('parameters', JSON.stringify({ resolution: '4k' }));
    expect(res.status).toBe(202);
    const job = await stack.waitForJob(res.body.job_id, undefined, 480_000);
    expect({ status: job.status, error: job.error }).toEqual({ status: 'completed', error: null });
    const attempt = (await request(stack.app).get(`/jobs/${res.body.job_id}`)).body.attempts[0];
    expect(attempt.pixels).toEqual({
      native_width: 816, native_height: 1024, method: 'super_resolution', factor: 4,
      upscalers: [{ model: 'realesrgan-x4-tiny.safetensors', scale: 4 }], seconds: expect.any(Number),
    });
    // Validation judged the upscaled image: its size, and the face checks ran on it.
    const checks = Object.fromEntries(attempt.verdict.checks.map((c: { name: string }) => [c.name, c]));
    expect(checks.dimensions).toMatchObject({ passed: true, value: '3264x4096' });
    expect(Object.keys(checks)).toEqual(expect.arrayContaining(['face_count', 'identity_distance']));
    const result = await request(stack.app).get(`/jobs/${res.body.job_id}/result`).buffer(true);
    const metadata = await sharp(result.body).metadata();
    expect([metadata.width, metadata.height]).toEqual([3264, 4096]);
    const written = JSON.parse(metadata.comments!.find((c) => c.keyword === 'apex:generation')!.text);
    expect(written.pixels).toMatchObject({ method: 'super_resolution', factor: 4 });
  }, 600_000);

  it('without an upscaler configured the worker resizes, and the record says so', async () => {
    gpu = await startGpuWorker({ APEX_GPU_UPSCALER_MODELS: '[]' });
    const submitted = await request(stack.app).post('/generations').send({ prompt: 'a lighthouse', width: 512, height: 512, upscale: 2 });
    expect(submitted.status).toBe(202);
    let view = submitted.body;
    while (['pending', 'running'].includes(view.status)) {
      await new Promise((r) => setTimeout(r, 200));
      view = (await request(stack.app).get(`/generations/${view.generation_id}`)).body;
    }
    expect({ status: view.status, error: view.error }).toEqual({ status: 'completed', error: null });
    expect(view.images[0]).toMatchObject({ width: 1024, height: 1024 });
    expect(view.pixels).toEqual({ native_width: 512, native_height: 512, method: 'resize', factor: 2, upscalers: [], seconds: expect.any(Number) });
  }, 300_000);
});
