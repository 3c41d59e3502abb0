import { UnrecoverableError } from 'bullmq';
import request from 'supertest';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

describe('POST /jobs/:id/retry', () => {
  let stack: Stack;
  let failPromptOnce = true;
  beforeAll(async () => {
    stack = await startStack({
      config: { MAX_ATTEMPTS: '2' },
      gpu: {
        // vibe=calm: the first prompt fails permanently once, so the job ends `failed`.
        prompt: (input) => {
          if (input.parameters.vibe === 'calm' && failPromptOnce) {
            failPromptOnce = false;
            throw new UnrecoverableError('prompt model unavailable');
          }
          return { prompt: `attempt ${input.attempt}` };
        },
        // Attempts 1 and 2 are rejected; from attempt 3 on (the retry cycle) they pass; vibe=friendly passes at once.
        validate: (input) => {
          const passed = input.attempt >= 3 || input.parameters.vibe === 'friendly';
          return { passed, score: input.attempt / 10, checks: [], feedback: 'closer crop' };
        },
      },
    });
  });
  afterAll(() => stack.close());

  const submit = async (parameters: object = {}) =>
    (await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg').field('parameters', JSON.stringify(parameters))).body.job_id as string;

  it('gives a failed_validation job a new cycle of attempts and keeps the first cycle in history', async () => {
    const jobId = await submit();
    expect((await stack.waitForJob(jobId)).status).toBe('failed_validation');
    const retry = await request(stack.app).post(`/jobs/${jobId}/retry`);
    expect(retry.status).toBe(202);
    const job = await stack.waitForJob(jobId);
    expect(job.status).toBe('completed');
    const view = (await request(stack.app).get(`/jobs/${jobId}`)).body;
    expect(view.attempts.map((a: any) => [a.number, a.status])).toEqual([[1, 'rejected'], [2, 'rejected'], [3, 'passed']]);
    expect(view.cycle).toBe(2);
    expect(view.history).toEqual([expect.objectContaining({ cycle: 1, status: 'failed_validation', report: expect.objectContaining({ summary: expect.any(String) }) })]);
    expect(view.result).toMatchObject({ attempt: 3 });
    expect((await request(stack.app).post(`/jobs/${jobId}/retry`)).status).toBe(409); // completed now
  });

  it('retries a job that failed on a step error', async () => {
    const jobId = await submit({ vibe: 'calm' });
    const failed = await stack.waitForJob(jobId);
    expect(failed.status).toBe('failed');
    expect((await request(stack.app).post(`/jobs/${jobId}/retry`)).status).toBe(202);
    const job = await stack.waitForJob(jobId);
    expect(job.status).toBe('completed');
    expect((job.history as any[])[0]).toMatchObject({ cycle: 1, status: 'failed', error: { code: 'step_failed' } });
    expect((job.attempts as any[]).map((a) => a.status)).toEqual(['errored', 'rejected', 'passed']);
  });

  it('refuses a job that has not failed', async () => {
    const jobId = await submit({ vibe: 'friendly' });
    expect((await stack.waitForJob(jobId)).status).toBe('completed');
    const res = await request(stack.app).post(`/jobs/${jobId}/retry`);
    expect([res.status, res.body.error.code]).toEqual([409, 'not_retryable']);
  });
});
