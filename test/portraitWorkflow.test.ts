import { UnrecoverableError } from 'bullmq';
import request from 'supertest';
import { readJobEvents } from '../src/flows/jobEvents';
import { JobModel } from '../src/store/jobModel';
import { referencePhoto, SEED_PARAMETERS } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import type { GpuScript } from './support/scriptedGpuWorker';

async function submit(stack: Stack, parameters: object = { ...SEED_PARAMETERS, resolution: '1k' }) {
  const res = await request(stack.app)
    .post('/jobs')
    .attach('image_file', await referencePhoto(), 'reference.jpg')
    .field('parameters', JSON.stringify(parameters));
  expect(res.status).toBe(202);
  return res.body.job_id as string;
}

const rejectFirstAttempt: GpuScript = {
  validate: ({ attempt }) =>
    attempt === 1
      ? { passed: false, score: 0.3, checks: [{ name: 'attire', passed: false, value: 't-shirt' }], feedback: 'wear a blazer' }
      : { passed: true, score: 0.92, checks: [{ name: 'attire', passed: true, value: 'blazer' }], feedback: '' },
};

describe('portrait workflow', () => {
  let stack: Stack;
  afterEach(() => stack?.close());

  it('completes on attempt 2 after attempt 1 fails validation, feeding its feedback into the next prompt', async () => {
    stack = await startStack({ gpu: rejectFirstAttempt });
    const jobId = await submit(stack);
    const job = await stack.waitForJob(jobId);

    expect(job.status).toBe('completed');
    const secondPrompt = stack.gpu!.callsFor(jobId, 'prompt')[1].input;
    expect(secondPrompt.previous).toEqual({ prompt: expect.stringContaining('attempt 1'), feedback: 'wear a blazer' });

    const view = (await request(stack.app).get(`/jobs/${jobId}`)).body;
    expect(view.attempts.map((a: any) => a.status)).toEqual(['rejected', 'passed']);
    expect(view.attempts[1].prompt).toContain('fix: wear a blazer');
    for (const attempt of view.attempts) {
      for (const step of ['prompt', 'generate', 'validate']) {
        expect(attempt.steps[step]).toMatchObject({ status: 'completed', tries: 1 });
        expect(attempt.steps[step].duration_ms).toBeGreaterThanOrEqual(0);
      }
    }
    expect(view.result).toMatchObject({ attempt: 2, image_key: `jobs/${jobId}/attempts/2/0.png` });
    expect(view.report).toBeNull();

    const image = await request(stack.app).get(`/jobs/${jobId}/result`).buffer(true);
    expect(image.status).toBe(200);
    expect(image.headers['content-type']).toBe('image/png');
    expect(image.body.subarray(1, 4).toString()).toBe('PNG');
    expect((await request(stack.app).get(`/jobs/${jobId}/report`)).status).toBe(409);
  });

  it('ends failed_validation with a report when every attempt fails, keeping all images', async () => {
    stack = await startStack({
      gpu: {
        validate: ({ attempt }) => ({
          passed: false,
          score: attempt / 10,
          checks: [{ name: 'identity_distance', passed: false, value: 0.8, threshold: 0.6 }],
          feedback: `attempt ${attempt} does not look like the reference`,
        }),
        report: ({ attempts }) => ({
          summary: `identity failed in ${attempts.length} attempts`,
          failedChecks: [{ name: 'identity_distance', count: attempts.length }],
          suggestions: ['use a sharper, front-facing reference photo'],
        }),
      },
    });
    const jobId = await submit(stack);
    const job = await stack.waitForJob(jobId);

    expect(job.status).toBe('failed_validation');
    const reportInput = stack.gpu!.callsFor(jobId, 'report')[0].input;
    expect(reportInput.attempts.map((a: any) => a.imageKeys[0])).toEqual([1, 2, 3].map((k) => `jobs/${jobId}/attempts/${k}/0.png`));
    for (const key of reportInput.attempts.map((a: any) => a.imageKeys[0])) {
      expect(await stack.objects.getBuffer(key)).toBeDefined();
    }
    const report = await request(stack.app).get(`/jobs/${jobId}/report`);
    expect(report.status).toBe(200);
    expect(report.body.report).toEqual({
      summary: 'identity failed in 3 attempts',
      failedChecks: [{ name: 'identity_distance', count: 3 }],
      suggestions: ['use a sharper, front-facing reference photo'],
    });
    expect(report.body.attempts).toHaveLength(3);
    const view = (await request(stack.app).get(`/jobs/${jobId}`)).body;
    expect(view.attempts.map((a: any) => a.image_url)).toEqual([1, 2, 3].map((k) => `/jobs/${jobId}/attempts/${k}/image`));
    const third = await request(stack.app).get(view.attempts[2].image_url).buffer(true);
    expect(third.status).toBe(200);
    expect(third.headers['content-type']).toBe('image/png');
    expect((await request(stack.app).get(`/jobs/${jobId}/attempts/4/image`)).body.error).toMatchObject({ code: 'attempt_not_found', field: 'attempt' });
    const result = await request(stack.app).get(`/jobs/${jobId}/result`);
    expect(result.status).toBe(409);
    expect(result.body.error).toMatchObject({ code: 'not_ready', status: 'failed_validation' });
  });

  it('fails the job with a clear error when a step fails permanently, without retrying it', async () => {
    stack = await startStack({
      gpu: {
        generate: () => {
          throw new UnrecoverableError('LoRA repo acme/missing does not exist');
        },
      },
    });
    const jobId = await submit(stack);
    const job = await stack.waitForJob(jobId);

    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'step_failed', step: 'generate', attempt: 1 });
    expect((job.error as any).message).toContain('LoRA repo acme/missing does not exist');
    expect(stack.gpu!.callsFor(jobId, 'generate')).toHaveLength(1);
    expect(stack.gpu!.callsFor(jobId, 'validate')).toHaveLength(0);
  });

  it('retries a transient step failure with backoff and completes', async () => {
    stack = await startStack({
      gpu: {
        prompt: (input, job) => {
          if (job.attemptsMade === 0) throw new Error('vLLM server connection reset');
          return { prompt: `portrait attempt ${input.attempt}` };
        },
      },
    });
    const jobId = await submit(stack);
    const job = await stack.waitForJob(jobId);

    expect(job.status).toBe('completed');
    expect(stack.gpu!.callsFor(jobId, 'prompt').map((c) => c.attemptsMade)).toEqual([0, 1]);
    expect((job.attempts as any[])[0].steps.prompt).toMatchObject({ status: 'completed', tries: 2 });
  });

  it('fails a step that no worker finishes within the step timeout instead of waiting forever', async () => {
    stack = await startStack({ config: { STEP_TIMEOUT_MS: '500' }, gpu: { generate: () => new Promise<never>(() => undefined) } });
    const jobId = await submit(stack);
    const job = await stack.waitForJob(jobId);

    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'step_timed_out', step: 'generate', attempt: 1 });
    expect((job.attempts as any[])[0].steps.generate.status).toBe('timed_out');
  });

  it('fails the job when a step returns a result that breaks its contract', async () => {
    stack = await startStack({ gpu: { prompt: () => ({ text: 'no prompt field' }) as any } });
    const jobId = await submit(stack);
    const job = await stack.waitForJob(jobId);

    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'invalid_step_result', step: 'prompt' });
    expect((job.error as any).message).toContain('prompt');
  });

  it('marks the job failed with a user-safe message when the orchestrator itself gives up', async () => {
    stack = await startStack();
    const jobId = await submit(stack);
    await stack.waitForJob(jobId);
    // A second orchestrator job for the same document whose state is corrupt: it can never run.
    await JobModel.updateOne({ _id: jobId }, { $set: { status: 'running' } });
    await stack.portraitQueue.add('portrait', { jobId, maxAttempts: 'three' } as never, { jobId: `portrait-${jobId}-corrupt`, attempts: 1 });
    const job = await stack.waitForJob(jobId, (j) => j.status === 'failed');

    expect(job.error).toEqual({ code: 'internal', message: expect.stringContaining('could not be orchestrated') });
    expect(JSON.stringify(job.error)).not.toMatch(/ZodError|invalid_type/);
    // Its event stream is told too, so listeners are not left waiting for an end that never comes.
    for (let i = 0; i < 100 && (await readJobEvents(stack.redis, stack.config.QUEUE_PREFIX, jobId, '0', 1)).at(-1)?.data.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await readJobEvents(stack.redis, stack.config.QUEUE_PREFIX, jobId, '0', 1)).at(-1)).toMatchObject({ type: 'status', data: { status: 'failed' } });
  });
});
