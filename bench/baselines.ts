import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config';
import { connectRedis } from '../src/redis';
import { CONCURRENCY } from './instantGpu';
import { measureServers, type ServerCost } from './serverCounters';

/**
 * What BullMQ alone does with the engine's three steps per job, on the same Redis in the same run:
 * the bare chain (each step's worker adds the next) and a static flow (FlowProducer, children
 * first: prompt is the child of generate, generate of validate), BullMQ's own way to run dependent
 * steps. Every step answers at once, as the engine's GPU doubles do, and each run keeps IN_FLIGHT
 * jobs in flight (keepInFlight), as the engine's run does.
 */
export type BaselineRun = TimedRun & { jobsPerSecond: number; gaps: number[] };

/** The timed part of a run: its seconds and what it cost the servers (setup and teardown left out). */
export type TimedRun = { seconds: number; cost: ServerCost };

export const STEPS = ['prompt', 'generate', 'validate'] as const;

/** Jobs in flight at any time. */
export const IN_FLIGHT = CONCURRENCY;

/**
 * Runs `total` jobs with IN_FLIGHT of them in flight at any time (a closed loop: a new job starts
 * when one finishes, as users waiting on their results submit), so latencies are those of a loaded
 * system rather than of a queue hundreds deep. `finisher` is the worker whose completed jobs are
 * whole jobs finished. Resolves with the seconds it took and the servers' cost over that time alone
 * (read through `redis`).
 */
export async function keepInFlight(redis: Redis, total: number, finisher: Worker, start: (i: number) => Promise<unknown>): Promise<TimedRun> {
  const cost = await measureServers(redis);
  let started = 0;
  let finished = 0;
  const began = performance.now();
  const seconds = await new Promise<number>((resolve, reject) => {
    const next = () => void (started < total && start(started++).catch(reject));
    finisher.on('completed', () => (++finished === total ? resolve((performance.now() - began) / 1000) : next()));
    for (let i = 0; i < Math.min(IN_FLIGHT, total); i++) next();
  });
  return { seconds, cost: await cost.stop() };
}

/**
 * Each step's worker, answering at once, recording when each job's steps started and finished:
 * the gap between a step finishing and the next one starting is what a job waits between GPU steps.
 */
function stepWorkers(queueOf: (step: string) => string, opts: { connection: ReturnType<typeof connectRedis>; prefix: string }, then?: (i: number, job: Job) => Promise<unknown>) {
  const started = new Map<string, number>();
  const finished = new Map<string, number>();
  const workers = STEPS.map((step, i) => {
    const worker = new Worker(
      queueOf(step),
      async (job) => {
        started.set(`${job.data.job}:${i}`, job.processedOn!);
        await then?.(i, job);
        return { ok: true };
      },
      { ...opts, concurrency: CONCURRENCY },
    );
    worker.on('completed', (job) => finished.set(`${job.data.job}:${i}`, job.finishedOn!));
    return worker;
  });
  const gaps = (jobs: number) =>
    Array.from({ length: jobs }, (_, j) => STEPS.slice(1).map((_, s) => started.get(`${j}:${s + 1}`)! - finished.get(`${j}:${s}`)!)).flat();
  return { workers, gaps };
}

/** Each step's worker adds the next step before it finishes (so the next may start first: a gap below 0). */
export async function benchRawChain(config: Config, jobs: number): Promise<BaselineRun> {
  const connection = connectRedis(config.REDIS_URL);
  const prefix = `${config.QUEUE_PREFIX}-chain`;
  const queues = STEPS.map((step) => new Queue(`chain-${step}`, { connection, prefix }));
  const opts = { removeOnComplete: true };
  const { workers, gaps } = stepWorkers((step) => `chain-${step}`, { connection, prefix }, (i, job) =>
    i + 1 < STEPS.length ? queues[i + 1].add(STEPS[i + 1], { job: job.data.job }, opts) : Promise.resolve(),
  );
  const run = await keepInFlight(connection, jobs, workers.at(-1)!, (job) => queues[0].add(STEPS[0], { job }, opts));
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.obliterate({ force: true }).then(() => q.close())));
  connection.disconnect();
  return { ...run, jobsPerSecond: jobs / run.seconds, gaps: gaps(jobs) };
}

/** One static flow per job: a parent runs once its child finished. */
export async function benchFlowProducer(config: Config, jobs: number): Promise<BaselineRun> {
  const connection = connectRedis(config.REDIS_URL);
  const prefix = `${config.QUEUE_PREFIX}-flow`;
  const { workers, gaps } = stepWorkers((step) => `flow-${step}`, { connection, prefix });
  const producer = new FlowProducer({ connection, prefix });
  const opts = { removeOnComplete: true };
  const node = (job: number, s: number): Parameters<FlowProducer['add']>[0] => ({
    name: STEPS[s],
    queueName: `flow-${STEPS[s]}`,
    data: { job },
    opts,
    ...(s > 0 ? { children: [node(job, s - 1)] } : {}),
  });
  const run = await keepInFlight(connection, jobs, workers.at(-1)!, (job) => producer.add(node(job, STEPS.length - 1)));
  await Promise.all(workers.map((w) => w.close()));
  await producer.close();
  const queues = STEPS.map((step) => new Queue(`flow-${step}`, { connection, prefix }));
  await Promise.all(queues.map((q) => q.obliterate({ force: true }).then(() => q.close())));
  connection.disconnect();
  return { ...run, jobsPerSecond: jobs / run.seconds, gaps: gaps(jobs) };
}
