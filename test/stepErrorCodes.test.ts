import type { ChildProcess } from 'node:child_process';
import request from 'supertest';
import { readStepFailure, STEP_ERROR_CODES, STEP_ERRORS } from '../src/flows/contracts/stepErrors';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import { GPU_PYTHON, GPU_WORKER, startProcess, stopProcess } from './support/workerProcess';

/** What the Python worker says about each failure, which must stay in the logs. */
const DETAIL = 'internal detail: /srv/apex/models/vlm refused';
/** The values the worker names for a code's params (tests/support/coded_failure_worker.py). */
const PARAMS: Record<string, string> = { repo: 'owner/face', index: '2', reason: 'no face found' };

describe('why a step failed, from a Python raise to the Job document', () => {
  let stack: Stack;
  let python: ChildProcess;
  beforeAll(async () => {
    stack = await startStack({ gpuSteps: ['generate', 'validate', 'report'] });
    python = await startProcess(GPU_PYTHON, ['tests/support/coded_failure_worker.py'], {
      cwd: GPU_WORKER,
      env: { PYTHONPATH: GPU_WORKER },
      config: stack.config,
      ready: 'python worker ready',
    });
  });
  afterAll(async () => {
    await stopProcess(python);
    await stack.close();
  });

  /** A job whose prompt step raises `raise` in Python (a code of the list, or "uncoded"). */
  const failedJob = async (raise: string) => {
    await stack.redis.set(`${stack.config.QUEUE_PREFIX}:test:raise`, raise);
    const res = await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg');
    return stack.waitForJob(res.body.job_id as string);
  };

  it.each(STEP_ERROR_CODES)('%s: the job records the code and the message written for the caller, not the worker’s words', async (code) => {
    const job = await failedJob(code);
    const { message, retryable } = STEP_ERRORS[code];
    expect(job.status).toBe('failed');
    expect(job.error).toEqual({ code, message: message.replace(/\{(\w+)\}/g, (_, name: string) => PARAMS[name]), retryable, step: 'prompt', attempt: 1 });
    expect(JSON.stringify(job)).not.toContain(DETAIL);
  });

  it('a failure without a code gets the generic code', async () => {
    const job = await failedJob('uncoded');
    expect(job.error).toMatchObject({ code: 'step_failed', step: 'prompt', attempt: 1 });
  });

  it('a code this side does not know (a newer worker) is recorded as a failure without one', () => {
    expect(readStepFailure('{"code":"from_the_future","params":{}}\nwhat happened')).toEqual({ detail: 'what happened' });
    expect(readStepFailure('{not json\nwhat happened')).toEqual({ detail: 'what happened' });
    expect(readStepFailure('plain reason')).toEqual({ detail: 'plain reason' });
  });
});
