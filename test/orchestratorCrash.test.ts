import request from 'supertest';
import type { ChildProcess } from 'node:child_process';
import { IdentityModel } from '../src/store/identityModel';
import { JobModel, type JobDocument } from '../src/store/jobModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import { startWorkerProcess, stopProcess } from './support/workerProcess';

describe('orchestrator crash', () => {
  let stack: Stack;
  let orchestrator: ChildProcess | undefined;
  afterAll(async () => {
    if (orchestrator) await stopProcess(orchestrator, 'SIGKILL');
    await stack.close();
  });

  it('a SIGKILLed orchestrator is replaced and every job completes with no step run twice', async () => {
    const slow = (ms: number) => new Promise((r) => setTimeout(r, ms));
    stack = await startStack({
      orchestrator: false,
      config: { ORCHESTRATOR_LOCK_MS: '2000' },
      gpu: {
        generate: async (input) => {
          await slow(300);
          const key = `${input.outputPrefix}/0.png`;
          await stack.objects.put(key, await referencePhoto({ width: 816, height: 1024, format: 'png' }), 'image/png');
          return { images: [{ key, width: input.width, height: input.height, contentType: 'image/png' }], seed: input.seed, timings: {} };
        },
        validate: ({ attempt }) => ({ passed: attempt === 2, score: attempt / 2, checks: [], feedback: 'closer crop' }),
      },
    });
    orchestrator = await startWorkerProcess('orchestrator', stack.config);

    const photo = await referencePhoto();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await request(stack.app).post('/jobs').attach('image_file', photo, 'me.jpg');
      ids.push(res.body.job_id);
    }
    // Kill it mid-flow: once some job is waiting on a generate step (GET /jobs/:id shows it live).
    const waitingOnGenerate = async () => {
      for (const id of ids) {
        const { body } = await request(stack.app).get(`/jobs/${id}`);
        if (body.attempts.some((a: any) => a.steps.generate?.status === 'queued')) return true;
      }
      return false;
    };
    const deadline = Date.now() + 30_000;
    while (!(await waitingOnGenerate())) {
      if (Date.now() > deadline) throw new Error('no job reached generate');
      await slow(20);
    }
    expect(await stopProcess(orchestrator, 'SIGKILL')).toBeNull();
    const unfinishedAtKill = await JobModel.countDocuments({ status: { $in: ['pending', 'running'] } });
    expect(unfinishedAtKill).toBeGreaterThan(0);

    orchestrator = await startWorkerProcess('orchestrator', stack.config);
    const jobs: JobDocument[] = [];
    for (const id of ids) jobs.push(await stack.waitForJob(id, undefined, 90_000));

    expect(jobs.map((j) => j.status)).toEqual(ids.map(() => 'completed'));
    const runs = new Map<string, number>();
    for (const call of stack.gpu!.calls) runs.set(call.stepJobId, (runs.get(call.stepJobId) ?? 0) + 1);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(ids.length * 6); // two attempts of prompt, generate, validate each
    for (const job of jobs) expect((job.attempts as any[]).map((a) => a.number)).toEqual([1, 2]);
  });

  it('a SIGKILLed orchestrator is replaced and identities being learnt become ready with no step run twice', async () => {
    // A stack of its own: the first test's orchestrator and GPU double go first.
    if (orchestrator) await stopProcess(orchestrator, 'SIGKILL');
    await stack.close();
    const slow = (ms: number) => new Promise((r) => setTimeout(r, ms));
    stack = await startStack({
      orchestrator: false,
      config: { ORCHESTRATOR_LOCK_MS: '2000' },
      gpu: {
        caption_identity: async (input, job) => {
          await slow(400);
          return stack.gpu!.defaults.caption_identity(input, job);
        },
        train_identity: async (input, job) => {
          await slow(400);
          return stack.gpu!.defaults.train_identity(input, job);
        },
      },
    });
    orchestrator = await startWorkerProcess('orchestrator', stack.config);
    const photos = await Promise.all([0, 1, 2, 3].map((i) => referencePhoto({ width: 480 + 16 * i })));
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      let req = request(stack.app).post('/identities').field('name', `person ${i}`);
      for (const photo of photos) req = req.attach('photos', photo, 'p.jpg');
      ids.push((await req).body.identity_id);
    }
    const deadline = Date.now() + 30_000;
    while ((await IdentityModel.countDocuments({ status: { $in: ['preparing', 'training'] } })) === 0) {
      if (Date.now() > deadline) throw new Error('no identity started');
      await slow(20);
    }
    expect(await stopProcess(orchestrator, 'SIGKILL')).toBeNull();
    orchestrator = await startWorkerProcess('orchestrator', stack.config);
    for (const id of ids) {
      for (let i = 0; ; i++) {
        const doc = await IdentityModel.findById(id).lean<{ status: string }>();
        if (doc!.status === 'ready') break;
        if (i > 1800) throw new Error(`identity ${id} still ${doc!.status}`);
        await slow(50);
      }
    }
    const runs = new Map<string, number>();
    for (const call of stack.gpu!.calls) runs.set(call.stepJobId, (runs.get(call.stepJobId) ?? 0) + 1);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(ids.length * 5); // the photo check, then prepare, caption, train and evaluate
  });
});
