import type { ChildProcess } from 'node:child_process';
import request from 'supertest';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import { GPU_PYTHON, GPU_WORKER, startProcess, stopProcess } from './support/workerProcess';

/** The Python prompt worker from gpu-worker/tests/support, on this suite's Redis and prefix. */
const startPythonPromptWorker = (stack: Stack) =>
  startProcess(GPU_PYTHON, ['tests/support/scripted_prompt_worker.py'], {
    cwd: GPU_WORKER,
    env: { PYTHONPATH: GPU_WORKER },
    config: stack.config,
    ready: 'python worker ready',
  });

describe('TypeScript orchestrator with a Python step worker (bullmq 6.7.0 / bullmq 3.4.4 on PyPI)', () => {
  let stack: Stack;
  let python: ChildProcess;
  beforeAll(async () => {
    stack = await startStack({ gpuSteps: ['generate', 'validate', 'report'] });
    python = await startPythonPromptWorker(stack);
  });
  afterAll(async () => {
    await stopProcess(python);
    await stack.close();
  });

  const submit = async (parameters: object) =>
    (await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg').field('parameters', JSON.stringify(parameters))).body
      .job_id as string;

  it('the parent reads the value a Python worker returned for its child', async () => {
    const job = await stack.waitForJob(await submit({ purpose: 'academic_profile' }));
    expect(job.status).toBe('completed');
    expect((job.attempts as any[])[0].prompt).toBe('python wrote: academic_profile portrait, attempt 1');
    expect(stack.gpu!.callsFor(job._id.toHexString(), 'generate')[0].input.prompt).toContain('python wrote');
  });

  it('a permanent failure raised in Python reaches the parent, which fails the job with its message', async () => {
    const job = await stack.waitForJob(await submit({ vibe: 'calm' }));
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'step_failed', step: 'prompt', attempt: 1 });
    expect((job.error as any).message).toContain('python prompt step refuses vibe calm');
    expect((job.attempts as any[])[0].steps.prompt).toMatchObject({ status: 'failed', tries: 1 });
  });
});
