import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import request from 'supertest';
import { startServices, type RunningServices, type ServiceName } from '../scripts/services';
import { JobModel, type JobDocument } from '../src/store/jobModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';
import { startProcess, startWorkerProcess, stopProcess } from './support/workerProcess';

const ROOT = join(__dirname, '..');
const JOBS = Number(process.env.CHAOS_JOBS ?? 30);

/**
 * Dependencies going away mid-flow, with real processes: this suite runs its own Redis (AOF on),
 * FerretDB and MinIO so it can stop and restart them; 2 orchestrator processes and 2 GPU-double
 * processes (whose generate writes to S3) do the work. After each outage every job must complete,
 * with each attempt recorded once. Each scenario prints how many jobs ran and how many were lost.
 */
describe('chaos: Redis restarted, MongoDB stopped 10 s, S3 unavailable', () => {
  let services: RunningServices;
  let stack: Stack;
  const processes: ChildProcess[] = [];
  const photo = referencePhoto();

  beforeAll(async () => {
    // BullMQ reports every refused reconnect on console.error while a service is down: expected here.
    const consoleError = console.error;
    jest.spyOn(console, 'error').mockImplementation((...args) => {
      if (!/ECONNREFUSED|Connection is closed/.test(String(args[0]?.message ?? args[0]))) consoleError(...args);
    });
    services = await startServices({ redisAppendOnly: true });
    stack = await startStack({
      orchestrator: false,
      gpu: false,
      config: { ...services.env, ORCHESTRATOR_LOCK_MS: '5000', STEP_RETRIES: '10', STEP_BACKOFF_MS: '500', RATE_LIMIT_PER_MINUTE: '100000' },
    });
    for (let i = 0; i < 2; i++) {
      processes.push(await startWorkerProcess('orchestrator', stack.config));
      processes.push(
        await startProcess(process.execPath, ['--import', 'tsx', 'test/support/gpuDoubleProcess.ts'], {
          cwd: ROOT,
          config: stack.config,
          ready: 'gpu double ready',
          env: { GPU_DOUBLE_GENERATE_MS: '1000', GPU_DOUBLE_CONCURRENCY: '4', GPU_DOUBLE_WRITE_IMAGES: '1' },
        }),
      );
    }
  }, 300_000);
  afterAll(async () => {
    await Promise.all(processes.map((p) => stopProcess(p, 'SIGKILL')));
    await stack?.close();
    await services?.stop();
  });

  /** Submits JOBS jobs, runs `outage` once the first has completed, then waits for every job to end. */
  async function survive(scenario: string, outage: () => Promise<void>) {
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const res = await request(stack.app).post('/jobs').attach('image_file', await photo, 'me.jpg');
      expect(res.status).toBe(202);
      ids.push(res.body.job_id);
    }
    while ((await JobModel.countDocuments({ _id: { $in: ids }, status: 'completed' })) < 1) await new Promise((r) => setTimeout(r, 50));
    const inFlight = await JobModel.countDocuments({ _id: { $in: ids }, status: { $in: ['pending', 'running'] } });
    await outage();
    // One deadline for all: a lost job costs the wait once, not once per job.
    const deadline = Date.now() + 120_000;
    const jobs: (JobDocument | undefined)[] = [];
    for (const id of ids) jobs.push(await stack.waitForJob(id, undefined, Math.max(0, deadline - Date.now())).catch(() => undefined));
    const lost = jobs.filter((j) => !j).length;
    const completed = jobs.filter((j) => j?.status === 'completed').length;
    const recordedTwice = jobs.filter((j) => j && (j.attempts as { number: number }[]).map((a) => a.number).join() !== '1,2').length;
    process.stdout.write(`chaos ${scenario}: ${JOBS} jobs (${inFlight} in flight at the outage), ${completed} completed, ${lost} lost, ${recordedTwice} with attempts other than [1, 2]\n`);
    expect({ lost, completed, recordedTwice }).toEqual({ lost: 0, completed: JOBS, recordedTwice: 0 });
  }

  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  async function down(name: ServiceName, ms: number, whileDown: () => Promise<void> = async () => undefined) {
    await services.stopService(name);
    const started = Date.now();
    await whileDown();
    await pause(ms - (Date.now() - started));
    await services.startService(name);
  }

  it('Redis restarted (AOF on) mid-flow: nothing lost', async () => {
    await survive('redis restart', () =>
      down('redis', 3000, async () => {
        await pause(300);
        // The API fails fast with a clear error rather than holding requests until Redis returns.
        const started = Date.now();
        const post = await request(stack.app).post('/jobs').attach('image_file', await photo, 'me.jpg');
        const health = await request(stack.app).get('/health');
        expect([post.status, post.body.error, post.headers['retry-after']]).toEqual([503, { code: 'dependency_unavailable', message: 'redis is unavailable; retry shortly', field: 'redis' }, '5']);
        expect([health.status, health.body.checks.redis.ok]).toEqual([503, false]);
        expect(Date.now() - started).toBeLessThan(2500); // answered, not parked until Redis is back
      }),
    );
  }, 300_000);

  it('MongoDB stopped for 10 s: the API answers 503 naming it, workers retry, every job completes', async () => {
    await survive('mongodb down 10 s', () =>
      down('mongodb', 10_000, async () => {
        await pause(500);
        const someJob = (await request(stack.app).get('/jobs?limit=1')).status;
        const get = await request(stack.app).get('/jobs/0123456789abcdef01234567');
        expect([someJob, get.status, get.body.error, get.headers['retry-after']]).toEqual([
          503, 503, { code: 'dependency_unavailable', message: 'mongodb is unavailable; retry shortly', field: 'mongodb' }, '5',
        ]);
        const post = await request(stack.app).post('/jobs').attach('image_file', await photo, 'me.jpg');
        expect([post.status, post.body.error?.field]).toEqual([503, 'mongodb']);
        const health = await request(stack.app).get('/health');
        expect([health.status, health.body.checks.mongodb.ok, health.body.checks.redis.ok]).toEqual([503, false, true]);
      }),
    );
  }, 300_000);

  it('S3 unavailable for 6 s: steps retry, nothing lost', async () => {
    await survive('s3 down 6 s', () =>
      down('s3', 6000, async () => {
        await pause(300);
        expect((await request(stack.app).get('/health')).body.checks.s3.ok).toBe(false);
      }),
    );
  }, 300_000);
});
