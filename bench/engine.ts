/**
 * npm run bench:engine [-- --jobs N]
 *
 * Throughput of the portrait engine (real orchestrator, MongoDB writes, S3 reference upload, instant
 * GPU-step doubles) against a raw BullMQ three-queue chain with the same number of step jobs, on the
 * same Redis in the same run. Prints items/s for both, their ratio, and the engine's hand-off latency
 * (step job finished -> next step job queued) at p50/p99.
 */
import { Queue, Worker } from 'bullmq';
import { CONCURRENCY, instantGpuSteps } from './instantGpu';
import mongoose from 'mongoose';
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from '../src/config';
import type { AttemptRecord } from '../src/flows/contracts/portraitState';
import { QueueName } from '../src/flows/queues';
import { createPortraitJob, enqueuePortraitJob } from '../src/flows/portrait/submission';
import { PortraitParameters } from '../src/flows/contracts/portraitParameters';
import { JobModel } from '../src/store/jobModel';
import { connectMongo } from '../src/store/mongo';
import { ObjectStore } from '../src/store/objectStore';
import { startOrchestratorRole } from '../src/workers/orchestratorRole';
import { connectRedis } from '../src/redis';
import { startServices } from '../scripts/services';
import sharp from 'sharp';
import { logger } from '../src/logger';

/** Job document writes of a job that passes on attempt 1: prompt, generate and validate queued, then final. */
const MONGO_WRITES_PER_JOB = 4;

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

async function benchEngine(config: Config, jobs: number) {
  await connectMongo(config.MONGO_URL);
  const objects = ObjectStore.fromConfig(config);
  await objects.ensureBucket();
  const redis = connectRedis(config.REDIS_URL);
  const portraitQueue = new Queue(QueueName.portrait, { connection: redis, prefix: config.QUEUE_PREFIX });
  const photo = await sharp({ create: { width: 512, height: 640, channels: 3, background: '#888' } }).jpeg().toBuffer();
  const reference = { data: photo, contentType: 'image/jpeg', width: 512, height: 640 };
  const stopGpu = instantGpuSteps(config);
  const orchestrator = startOrchestratorRole(config, CONCURRENCY);

  // Jobs are created (S3 upload, Mongo insert) before the clock starts, as the raw chain's are.
  const deps = { config, objects, portraitQueue };
  const parameters = PortraitParameters.parse({});
  const states = [];
  for (let i = 0; i < jobs; i += CONCURRENCY) {
    const batch = Array.from({ length: Math.min(CONCURRENCY, jobs - i) }, () => createPortraitJob(deps, { tenant: 'bench', parameters, reference }));
    states.push(...(await Promise.all(batch)));
  }
  const started = performance.now();
  await Promise.all(states.map((state) => enqueuePortraitJob(deps, state)));
  while ((await portraitQueue.getCompletedCount()) < jobs) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - started) / 1000;

  const handoffs: number[] = [];
  for (const job of await JobModel.find({}, { attempts: 1 }).lean()) {
    for (const attempt of job.attempts as AttemptRecord[]) {
      const { prompt, generate, validate } = attempt.steps;
      handoffs.push(generate!.queuedAt - prompt!.finishedAt!, validate!.queuedAt - generate!.finishedAt!);
    }
  }
  await orchestrator.close();
  await stopGpu();
  await portraitQueue.close();
  redis.disconnect();
  await mongoose.disconnect();
  return { seconds, itemsPerSecond: jobs / seconds, handoffs };
}

/** The same number of step jobs as a plain chain: each step's worker enqueues the next step. */
async function benchRawChain(config: Config, jobs: number) {
  const connection = connectRedis(config.REDIS_URL);
  const prefix = `${config.QUEUE_PREFIX}-raw`;
  const names = ['raw-prompt', 'raw-generate', 'raw-validate'];
  const queues = names.map((n) => new Queue(n, { connection, prefix }));
  let finished = 0;
  const handoffs: number[] = [];
  const workers = names.map(
    (name, i) =>
      new Worker(
        name,
        async (job) => {
          if (i + 1 < names.length) {
            const next = await queues[i + 1].add('step', { chain: job.data.chain, from: Date.now() }, { removeOnComplete: true });
            handoffs.push(next.timestamp - job.processedOn!);
          }
          return { ok: true };
        },
        { connection, prefix, concurrency: CONCURRENCY, removeOnComplete: { count: 0 } },
      ),
  );
  const done = new Promise<void>((resolve) =>
    workers[2].on('completed', () => {
      if (++finished === jobs) resolve();
    }),
  );
  const started = performance.now();
  await queues[0].addBulk(Array.from({ length: jobs }, (_, chain) => ({ name: 'step', data: { chain }, opts: { removeOnComplete: true } })));
  await done;
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.obliterate({ force: true }).then(() => q.close())));
  connection.disconnect();
  return { seconds, itemsPerSecond: jobs / seconds, handoffs };
}

/** The MongoDB server's own ceiling: concurrent single-document updates of the size the engine writes. */
async function benchMongoUpdates(config: Config, updates: number) {
  await connectMongo(config.MONGO_URL);
  const collection = mongoose.connection.db!.collection('bench_updates');
  const { insertedIds } = await collection.insertMany(Array.from({ length: CONCURRENCY }, (_, i) => ({ i, attempts: [] })));
  const ids = Object.values(insertedIds);
  const started = performance.now();
  let next = 0;
  await Promise.all(
    ids.map(async (_id) => {
      while (next++ < updates) {
        await collection.updateOne({ _id }, { $set: { status: 'running', attempts: [{ number: 1, steps: { prompt: { status: 'queued', queuedAt: Date.now() } } }] } });
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  await collection.drop();
  await mongoose.disconnect();
  return updates / seconds;
}

async function main() {
  const { values } = parseArgs({ options: { jobs: { type: 'string', default: '300' } } });
  const jobs = Number(values.jobs);
  logger.level = 'warn';
  const services = process.env.REDIS_URL ? undefined : await startServices();
  const config = loadConfig({ ...process.env, ...services?.env, LOG_LEVEL: 'error', QUEUE_PREFIX: `bench${Date.now()}`, MONGO_URL: `${(services?.env ?? process.env).MONGO_URL!.replace(/\/[^/]*$/, '')}/apex_bench_${Date.now()}` });
  try {
    const mongoUpdatesPerSecond = await benchMongoUpdates(config, 1000);
    const raw = await benchRawChain(config, jobs);
    const engine = await benchEngine(config, jobs);
    const fmt = (n: number) => n.toFixed(1);
    console.log(`\nengine benchmark: ${jobs} jobs x 3 step jobs, concurrency ${CONCURRENCY}, one Redis\n`);
    console.log(`raw BullMQ 3-queue chain : ${fmt(raw.itemsPerSecond)} jobs/s (${raw.seconds.toFixed(2)} s)`);
    console.log(`portrait engine          : ${fmt(engine.itemsPerSecond)} jobs/s (${engine.seconds.toFixed(2)} s)`);
    console.log(`ratio engine/raw         : ${(engine.itemsPerSecond / raw.itemsPerSecond).toFixed(2)}`);
    console.log(`engine hand-off (step finished -> next step queued): p50 ${percentile(engine.handoffs, 50)} ms, p99 ${percentile(engine.handoffs, 99)} ms`);
    console.log(`MongoDB server: ${fmt(mongoUpdatesPerSecond)} updates/s; the engine writes ${MONGO_WRITES_PER_JOB} per one-attempt job -> ceiling ${fmt(mongoUpdatesPerSecond / MONGO_WRITES_PER_JOB)} jobs/s`);
    console.log(`raw chain hand-off (step started -> next step queued): p50 ${percentile(raw.handoffs, 50)} ms, p99 ${percentile(raw.handoffs, 99)} ms`);
  } finally {
    await services?.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
