import mongoose from 'mongoose';
import { randomBytes } from 'node:crypto';
import { createApp } from '../../src/api/app';
import { loadConfig, type Config } from '../../src/config';
import { portraitJobId } from '../../src/flows/ids';
import { QueueName, QueueSet } from '../../src/flows/queues';
import type { StepName } from '../../src/flows/steps/registry';
import { connectApiRedis, connectRedis } from '../../src/redis';
import { JobModel, type JobDocument } from '../../src/store/jobModel';
import { connectMongo, mongoUrlWithDatabase } from '../../src/store/mongo';
import { ObjectStore } from '../../src/store/objectStore';
import { startNotifierRole } from '../../src/workers/notifierRole';
import { startOrchestratorRole } from '../../src/workers/orchestratorRole';
import { ScriptedGpuWorker, type GpuScript } from './scriptedGpuWorker';

/**
 * A suite's own slice of the real services: its own BullMQ prefix, MongoDB database and S3 bucket,
 * so suites running side by side never see each other's jobs.
 */
export async function testConfig(given: Record<string, string> = {}): Promise<Config> {
  const id = randomBytes(4).toString('hex');
  // A suite with its own services (the chaos suite) passes their MONGO_URL: its database is still per suite.
  const { MONGO_URL: mongoServer = process.env.MONGO_URL!, ...overrides } = given;
  return loadConfig({
    ...process.env,
    QUEUE_PREFIX: `t${id}`,
    MONGO_URL: mongoUrlWithDatabase(mongoServer, `apex_${id}`),
    S3_BUCKET: `apex-test-${id}`,
    STEP_BACKOFF_MS: '20',
    // Long enough that a CPU-starved test process does not lose locks; the crash test sets its own.
    ORCHESTRATOR_LOCK_MS: '15000',
    ...overrides,
  });
}

export type Stack = Awaited<ReturnType<typeof startStack>>;

/** API app (not listening: supertest drives it), orchestrator role and, unless disabled, a GPU double. */
export async function startStack(
  opts: { config?: Record<string, string>; gpu?: GpuScript | false; gpuSteps?: StepName[]; orchestrator?: boolean; notifier?: boolean } = {},
) {
  const config = await testConfig(opts.config);
  await connectMongo(config.MONGO_URL);
  const redis = await connectApiRedis(config.REDIS_URL);
  const objects = ObjectStore.fromConfig(config);
  await objects.ensureBucket();
  const queues = new QueueSet(redis, config.QUEUE_PREFIX);
  const portraitQueue = queues.get(QueueName.portrait);
  const app = createApp({ config, objects, queues, redis });
  const orchestrator = opts.orchestrator === false ? undefined : startOrchestratorRole(config);
  const notifier = opts.notifier ? startNotifierRole(config) : undefined;
  // Workers block on Redis: their own connection, waiting out a reconnect (the API's fails fast).
  const gpuConnection = opts.gpu === false ? undefined : connectRedis(config.REDIS_URL);
  const gpu = gpuConnection && opts.gpu !== false ? new ScriptedGpuWorker(config, gpuConnection, objects, opts.gpu ?? {}, opts.gpuSteps).start() : undefined;

  /**
   * Resolves with the Job document once `done` holds for it; by default once the job has ended: its
   * document says so and (with an orchestrator here) its orchestrator job has finished too, since
   * the final events, metrics and webhook are written after the document (PortraitOrchestrator.finish).
   */
  async function waitForJob(jobId: string, done?: (j: JobDocument) => boolean, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    const ended = (j: JobDocument) => !['pending', 'running'].includes(j.status);
    for (;;) {
      const job = await JobModel.findById(jobId).lean<JobDocument>();
      if (job && (done ?? ended)(job) && (done || !orchestrator || (await orchestratorJobFinished(jobId, job.cycle)))) return job;
      if (Date.now() > deadline) throw new Error(`job ${jobId} still ${job?.status} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const orchestratorJobFinished = async (jobId: string, cycle?: number) =>
    ['completed', 'failed', 'unknown'].includes(await portraitQueue.getJobState(portraitJobId(jobId, cycle ?? 1)));

  async function close() {
    await gpu?.close();
    gpuConnection?.disconnect();
    await orchestrator?.close();
    await notifier?.close();
    await portraitQueue.obliterate({ force: true }).catch(() => undefined);
    await queues.close();
    redis.disconnect();
    objects.client.destroy();
    await mongoose.connection.dropDatabase().catch(() => undefined);
    await mongoose.disconnect();
  }

  return { config, redis, objects, queues, portraitQueue, app, orchestrator, gpu, waitForJob, close };
}

/** The environment that makes a child process load exactly this config (one home: config.ts). */
export { configEnv } from '../../src/config';
