import request from 'supertest';
import { stepDeadlinesKey } from '../src/flows/redisKeys';
import { sweepStepDeadlines, type ReleaseStep } from '../src/flows/steps/stepDeadlines';
import { releaseStep } from '../src/flows/steps/stepJobs';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

const TIMEOUT_MS = 10 * 60_000;

/** The step watchdog: one deadline per queued step in a sorted set, swept by every orchestrator. */
describe('step deadlines', () => {
  let stack: Stack;
  afterEach(() => stack?.close());

  const submit = async () => (await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg')).body.job_id as string;
  const deadlines = () => stack.redis.zrange(stepDeadlinesKey(stack.config.QUEUE_PREFIX), '0', '-1');
  const release: ReleaseStep = (queue, stepJobId) => releaseStep(stack.queues.get(queue), stepJobId, 'detach');

  it('releases a step still running past its deadline, whichever process sweeps, and the job fails it as timed out', async () => {
    // Deadlines ten minutes out: only the sweep below, run as if from then, finds this one due.
    stack = await startStack({ config: { STEP_TIMEOUT_MS: String(TIMEOUT_MS) }, gpu: { generate: () => new Promise<never>(() => undefined) } });
    const jobId = await submit();
    for (let i = 0; !(await deadlines()).some((d) => d.endsWith(`${jobId}-a1-generate`)); i++) {
      if (i > 400) throw new Error('generate never queued');
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(await sweepStepDeadlines(stack.redis, stack.config.QUEUE_PREFIX, release)).toBe(0);

    const later = Date.now() + TIMEOUT_MS + 1000;
    expect(await sweepStepDeadlines(stack.redis, stack.config.QUEUE_PREFIX, release, later)).toBe(1);
    expect(await sweepStepDeadlines(stack.redis, stack.config.QUEUE_PREFIX, release, later)).toBe(0);

    const job = await stack.waitForJob(jobId);
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'step_timed_out', step: 'generate', attempt: 1 });
  });

  it('leaves no deadline behind once the steps have finished', async () => {
    stack = await startStack();
    const jobIds = await Promise.all([submit(), submit(), submit()]);
    for (const jobId of jobIds) expect((await stack.waitForJob(jobId)).status).toBe('completed');
    expect(await deadlines()).toEqual([]);
  });

  it('leaves no deadline behind for the step a cancel left unfinished', async () => {
    stack = await startStack({ gpuSteps: ['prompt', 'validate', 'report'] }); // generate stays queued
    const jobId = await submit();
    while (!(await deadlines()).some((d) => d.endsWith(`${jobId}-a1-generate`))) await new Promise((r) => setTimeout(r, 25));
    expect((await request(stack.app).post(`/jobs/${jobId}/cancel`)).status).toBe(202);
    expect((await stack.waitForJob(jobId)).status).toBe('cancelled');
    expect(await deadlines()).toEqual([]);
  });
});
