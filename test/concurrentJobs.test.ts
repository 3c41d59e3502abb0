import { Job } from 'bullmq';
import request from 'supertest';
import { portraitJobId } from '../src/flows/ids';
import type { JobDocument } from '../src/store/jobModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

describe('50 concurrent jobs', () => {
  let stack: Stack;
  afterAll(() => stack.close());

  it('all finish, and MongoDB agrees with BullMQ about every job and step', async () => {
    stack = await startStack({
      // About half the jobs fail attempt 1, so the run mixes one- and two-attempt jobs.
      gpu: { validate: ({ attempt }) => ({ passed: attempt > 1 || Math.random() < 0.5, score: 0.7, checks: [], feedback: 'again' }) },
    });
    const photo = await referencePhoto();
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => request(stack.app).post('/jobs').attach('image_file', photo, 'me.jpg')),
    );
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 202));
    const ids = responses.map((r) => r.body.job_id as string);
    expect(new Set(ids).size).toBe(50);

    const jobs: JobDocument[] = await Promise.all(ids.map((id) => stack.waitForJob(id, undefined, 120_000)));
    expect(jobs.filter((j) => j.status !== 'completed').map((j) => ({ status: j.status, error: j.error }))).toEqual([]);

    for (const job of jobs) {
      const id = job._id.toHexString();
      const bull = await Job.fromId(stack.portraitQueue, portraitJobId(id));
      expect(await bull!.getState()).toBe('completed');
      expect(bull!.returnvalue).toEqual({ status: job.status });
      const attempts = job.attempts as any[];
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      for (const attempt of attempts) {
        for (const step of ['prompt', 'generate', 'validate'] as const) {
          expect(attempt.steps[step].status).toBe('completed');
          expect(stack.gpu!.calls.filter((c) => c.stepJobId === attempt.steps[step].stepJobId)).toHaveLength(1);
        }
      }
    }
    const stepsInMongo = jobs.reduce((n, j) => n + (j.attempts as any[]).length * 3, 0);
    expect(stack.gpu!.calls).toHaveLength(stepsInMongo);
  });
});
