import { Job, Queue } from 'bullmq';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { createApp } from '../src/api/app';
import sharp from 'sharp';
import request from 'supertest';
import { JobModel } from '../src/store/jobModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import { captureLogs, dumpMongo, dumpRedis } from './support/secretScan';
import { buildTinyModels, startTinyGpuWorker, stopProcess } from './support/workerProcess';

const ADMIN_TOKEN = 'operator-token-for-tests-0123';

/** The endpoint an operator would redirect a tenant's keys to: counts every byte it receives. */
async function startListener() {
  let received = 0;
  const server = net.createServer((socket) => socket.on('data', (d) => (received += d.length)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bytes: () => received,
    close: () => new Promise((r) => server.close(r)),
  };
}

describe('full stack: API + TypeScript orchestrator + Python GPU worker with tiny models', () => {
  let stack: Stack;
  let gpu: ChildProcess | undefined;
  beforeAll(async () => {
    // The worker runs on the default tiny models, which the dev scripts build before starting it.
    buildTinyModels();
    stack = await startStack({
      gpu: false,
      // A writable dashboard on purpose, and the local MinIO as a caller's "own" bucket endpoint.
      config: { MAX_ATTEMPTS: '2', SECRETS_KEY: randomBytes(32).toString('base64'), ADMIN_TOKEN, ADMIN_READ_ONLY: 'false', DESTINATION_ALLOW_PRIVATE: 'true' },
    });
  });
  // A test that fails before stopping its worker must not leave it consuming the next test's steps.
  afterEach(async () => {
    if (gpu) await stopProcess(gpu);
    gpu = undefined;
  });
  afterAll(() => stack.close());

  // The seed's request: curl -F image_file=@me.jpg -F 'parameters={...}' /jobs
  const submit = async () => {
    const res = await request(stack.app)
      .post('/jobs')
      .attach('image_file', await referencePhoto(), 'me.jpg')
      .field('parameters', JSON.stringify({ purpose: 'corporate_headshot', attire: 'business_formal', resolution: '1k' }));
    expect(res.status).toBe(202);
    return res.body.job_id as string;
  };

  it('completes when the deployment gates only on image integrity', async () => {
    // No upscaler: the tiny random Real-ESRGAN flattens what it enlarges (not_blank fails on its output); the
    // upscale path has its own end-to-end test (test/upscale.test.ts). Here the render is resized.
    gpu = await startTinyGpuWorker(stack.config, { APEX_GPU_GATING_CHECKS: '["dimensions","not_blank"]', APEX_GPU_PASS_SCORE: '0', APEX_GPU_UPSCALER_MODELS: '[]' });
    const jobId = await submit();
    const job = await stack.waitForJob(jobId, undefined, 240_000);
    expect(job.status).toBe('completed');
    const view = (await request(stack.app).get(`/jobs/${jobId}`)).body;
    const verdict = view.attempts[0].verdict;
    expect(verdict.checks.map((c: any) => c.name)).toEqual(
      expect.arrayContaining(['dimensions', 'face_count', 'identity_distance', 'vlm_attire']),
    );
    // The Python worker's denoising progress reaches the job's event stream.
    const events = await request(stack.app).get(`/jobs/${jobId}/events`).buffer(true).parse((res, cb) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => cb(null, text));
    });
    expect(events.body).toMatch(/event: progress\ndata: \{"step":"generate","attempt":1,"denoise_step":\d+,"denoise_total":4\}/);
    expect(events.body).toMatch(/event: status\ndata: \{"status":"completed"\}\n\n$/);
    const result = await request(stack.app).get(`/jobs/${jobId}/result`).buffer(true);
    expect(result.status).toBe(200);
    expect(result.headers['content-type']).toBe('image/png');
    // The editing model rendered it from the person's photo: the step's input names the reference.
    const generate = new Queue('portrait-generate', { connection: stack.redis, prefix: stack.config.QUEUE_PREFIX });
    const step = await Job.fromId(generate, `${jobId}-a1-generate`);
    await generate.close();
    expect(step!.data.referenceImageKey).toBe((await JobModel.findById(jobId).lean<{ reference: { key: string } }>())!.reference.key);
    const metadata = (await sharp(result.body).metadata()).comments?.find((c) => c.keyword === 'apex:generation')?.text;
    expect(JSON.parse(metadata!).model).toBe('kontext');
    await stopProcess(gpu);
    gpu = undefined;
  }, 300_000);

  it("a generation's per-request secret is opened only inside the Python step: not in Redis, MongoDB, logs or responses", async () => {
    const token = `hf_${randomBytes(16).toString('hex')}`;
    const logs = captureLogs();
    let res, view, pythonOutput = '';
    try {
      gpu = await startTinyGpuWorker(stack.config, { LOG_LEVEL: 'DEBUG' });
      gpu.stdout!.on('data', (d) => (pythonOutput += d));
      gpu.stderr!.on('data', (d) => (pythonOutput += d));
      res = await request(stack.app).post('/generations?wait=30').send({ prompt: 'a studio portrait', width: 256, height: 256, secrets: { hf_token: token } });
      view = await request(stack.app).get(`/generations/${res.body.generation_id}?include=base64`);
      await stopProcess(gpu);
      gpu = undefined;
    } finally {
      logs.stop();
    }
    // Completed means the Python step opened the sealed envelope (a wrong key fails the step).
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('completed');
    const everywhere = {
      redis: await dumpRedis(stack.redis, stack.config.QUEUE_PREFIX),
      mongodb: await dumpMongo(),
      apiLogs: logs.lines.join(''),
      pythonLogs: pythonOutput,
      responses: JSON.stringify([res.body, view.body]),
    };
    expect(everywhere.redis).toContain('v1.'); // the sealed envelope is there, in the step payload
    expect(logs.lines.length).toBeGreaterThan(0);
    for (const [where, text] of Object.entries(everywhere)) expect({ where, leaked: text.includes(token) }).toEqual({ where, leaked: false });
  }, 300_000);

  it("an operator who edits a queued step's destination in the dashboard breaks the seal: the worker refuses, nothing reaches the edited endpoint", async () => {
    const bucket = `caller-${randomBytes(4).toString('hex')}`;
    await stack.objects.client.send(new CreateBucketCommand({ Bucket: bucket }));
    const attacker = await startListener();
    const generate = new Queue('generate', { connection: stack.redis, prefix: stack.config.QUEUE_PREFIX });
    const submit = async () => {
      const body = {
        prompt: 'a studio portrait', width: 256, height: 256,
        destination: { bucket, prefix: 'renders', endpoint: stack.config.S3_ENDPOINT },
        secrets: { s3: { access_key_id: stack.config.S3_ACCESS_KEY_ID, secret_access_key: stack.config.S3_SECRET_ACCESS_KEY } },
      };
      const res = await request(stack.app).post('/generations').send(body);
      expect(res.status).toBe(202);
      const id = res.body.generation_id as string;
      for (let i = 0; i < 400; i++) {
        // Fair dispatch queues every step with a priority: it waits in the prioritized set.
        const step = (await generate.getJobs(['wait', 'prioritized'])).find((j) => j.data.jobId === id);
        if (step) return { id, step };
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no generate step queued for ${id}`);
    };
    const edited = await submit();
    const untouched = await submit();
    const update = (app = stack.app) =>
      request(app)
        .patch(`/admin/queues/api/queues/generate/${edited.step.id}/update-data`)
        .auth('ops', ADMIN_TOKEN)
        .send({ jobData: { ...edited.step.data, destination: { ...edited.step.data.destination, endpoint: attacker.url } } });
    // The default dashboard is read-only: it refuses the edit.
    const readOnly = createApp({ config: { ...stack.config, ADMIN_READ_ONLY: true }, objects: stack.objects, queues: stack.queues, redis: stack.redis });
    expect((await update(readOnly)).status).toBeGreaterThanOrEqual(400);
    expect((await update()).status).toBe(200);
    expect((await Job.fromId(generate, edited.step.id!))!.data.destination.endpoint).toBe(attacker.url);
    try {
      gpu = await startTinyGpuWorker(stack.config, {});
      const ended = async (id: string) => {
        for (let i = 0; i < 2400; i++) {
          const view = (await request(stack.app).get(`/generations/${id}`)).body;
          if (['completed', 'failed', 'cancelled'].includes(view.status)) return view;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`generation ${id} did not end`);
      };
      const [refused, accepted] = [await ended(edited.id), await ended(untouched.id)];
      expect(refused.status).toBe('failed');
      expect(JSON.stringify(refused.error)).toContain('sealed secrets cannot be opened');
      expect(attacker.bytes()).toBe(0);
      expect(accepted.status).toBe('completed');
      expect(accepted.images[0]).toMatchObject({ bucket, key: expect.stringMatching(/^renders\//) });
    } finally {
      await attacker.close();
      await generate.close();
      if (gpu) await stopProcess(gpu);
      gpu = undefined;
    }
  }, 300_000);

  it('cancel aborts a running generation inside the Python worker and the job ends cancelled', async () => {
    // Enough denoising steps that the generation is still running when the cancel arrives.
    gpu = await startTinyGpuWorker(stack.config, { APEX_GPU_DEFAULT_STEPS: '100', APEX_GPU_NATIVE_MAX_MEGAPIXELS: '1.0' });
    const jobId = await submit();
    const generate = new Queue('portrait-generate', { connection: stack.redis, prefix: stack.config.QUEUE_PREFIX });
    const stepId = `${jobId}-a1-generate`;
    // The render is under way once the worker reports its first denoising step on the step job.
    const denoising = async () => typeof (await Job.fromId(generate, stepId))?.progress === 'object';
    for (const until = Date.now() + 120_000; !(await denoising()); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > until) throw new Error('the generate step reported no denoising progress within 120 s');
    }
    expect((await request(stack.app).post(`/jobs/${jobId}/cancel`)).status).toBe(202);
    const job = await stack.waitForJob(jobId, undefined, 60_000);
    expect(job.status).toBe('cancelled');
    const step = (await Job.fromId(generate, stepId))!;
    expect(step.failedReason).toContain('cancelled');
    expect((step.progress as { step: number }).step).toBeLessThan(100);
    await generate.close();
    await stopProcess(gpu);
    gpu = undefined;
  }, 300_000);

  it('fails a portrait job whose identity LoRA cannot be had, with the LoRA named', async () => {
    gpu = await startTinyGpuWorker(stack.config, {});
    const res = await request(stack.app)
      .post('/jobs')
      .attach('image_file', await referencePhoto(), 'me.jpg')
      .field('loras', JSON.stringify([{ repo: 'nobody/no-such-face', weight_name: 'face.safetensors' }]));
    expect(res.status).toBe(202);
    const job = await stack.waitForJob(res.body.job_id, undefined, 240_000);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'lora_unusable', step: 'generate', message: expect.stringContaining('nobody/no-such-face') });
    await stopProcess(gpu);
    gpu = undefined;
  }, 300_000);

  it('ends failed_validation with a report under the default thresholds (random weights draw no face)', async () => {
    gpu = await startTinyGpuWorker(stack.config, {});
    const jobId = await submit();
    const job = await stack.waitForJob(jobId, undefined, 240_000);
    expect(job.status).toBe('failed_validation');
    const report = (await request(stack.app).get(`/jobs/${jobId}/report`)).body;
    expect(report.report.failedChecks).toEqual(expect.arrayContaining([{ name: 'face_count', count: 2 }]));
    expect(report.report.summary).toEqual(expect.any(String));
    const image = await request(stack.app).get(`/jobs/${jobId}/attempts/2/image`).buffer(true);
    expect(image.status).toBe(200);
  }, 300_000);
});
