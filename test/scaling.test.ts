import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { JobModel, type JobDocument } from '../src/store/jobModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import { startProcess, startWorkerProcess, stopProcess } from './support/workerProcess';

const ROOT = join(__dirname, '..');
const JOBS = Number(process.env.SCALING_JOBS ?? 200);

/**
 * Horizontal scaling with crashes: 3 orchestrator processes and 3 GPU-step worker processes share
 * 200 jobs; one of each is SIGKILLed mid-run. Every job must end exactly once, each attempt recorded once.
 */
describe('scaling out and losing processes', () => {
  let stack: Stack;
  const processes: ChildProcess[] = [];
  afterAll(async () => {
    await Promise.all(processes.map((p) => stopProcess(p, 'SIGKILL')));
    await stack.close();
  });

  it(`${JOBS} jobs over 3 orchestrators and 3 GPU workers, one of each killed: all finish, nothing twice`, async () => {
    stack = await startStack({ orchestrator: false, gpu: false, config: { ORCHESTRATOR_LOCK_MS: '3000', ORCHESTRATOR_CONCURRENCY: '20', RATE_LIMIT_PER_MINUTE: '100000' } });
    const gpu = () =>
      startProcess(process.execPath, ['--import', 'tsx', 'test/support/gpuDoubleProcess.ts'], {
        cwd: ROOT,
        config: stack.config,
        ready: 'gpu double ready',
        env: { GPU_DOUBLE_GENERATE_MS: '300', GPU_DOUBLE_CONCURRENCY: '4' },
      });
    for (let i = 0; i < 3; i++) processes.push(await startWorkerProcess('orchestrator', stack.config), await gpu());

    const photo = await referencePhoto();
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const res = await request(stack.app).post('/jobs').attach('image_file', photo, 'me.jpg');
      expect(res.status).toBe(202);
      ids.push(res.body.job_id);
    }

    // Once a tenth of the jobs are done, kill one orchestrator and one GPU worker without warning.
    while ((await stack.portraitQueue.getCompletedCount()) < JOBS / 10) await new Promise((r) => setTimeout(r, 100));
    const [orchestrator, gpuWorker] = processes;
    expect(await stopProcess(orchestrator, 'SIGKILL')).toBeNull();
    expect(await stopProcess(gpuWorker, 'SIGKILL')).toBeNull();
    expect(await JobModel.countDocuments({ status: { $in: ['pending', 'running'] } })).toBeGreaterThan(0);

    const jobs: JobDocument[] = [];
    for (const id of ids) jobs.push(await stack.waitForJob(id, undefined, 240_000));
    expect(jobs.filter((j) => j.status !== 'completed').map((j) => [j._id, j.status, j.error])).toEqual([]);
    for (const job of jobs) expect((job.attempts as { number: number }[]).map((a) => a.number)).toEqual([1, 2]);
    // Each job's orchestrator finished once: one completed BullMQ job per portrait, with its status.
    const counts = await stack.portraitQueue.getJobCounts('completed', 'failed', 'active', 'waiting', 'delayed', 'waiting-children');
    expect(counts).toMatchObject({ completed: JOBS, failed: 0, active: 0, waiting: 0, 'waiting-children': 0 });
  }, 600_000);
});
