import { FlowProducer, Queue, Worker, type Job } from 'bullmq';
import type { Config } from '../src/config';
import { connectRedis } from '../src/redis';
import { CONCURRENCY } from './instantGpu';

/**
 * What BullMQ alone does with the engine's three steps per job, on the same Redis in the same run:
 * the bare chain (each step's worker adds the next) and a static flow (FlowProducer, children
 * first: prompt is the child of generate, generate of validate), BullMQ's own way to run dependent
 * steps. Every step answers at once, as the engine's GPU doubles do.
 */
export type BaselineRun = { seconds: number; jobsPerSecond: number; handoffs: number[] };

const STEPS = ['prompt', 'generate', 'validate'] as const;

/** Each step's worker adds the next step; hand-off: step started -> next step queued. */
export async function benchRawChain(config: Config, jobs: number): Promise<BaselineRun> {
  const connection = connectRedis(config.REDIS_URL);
  const prefix = `${config.QUEUE_PREFIX}-chain`;
  const queues = STEPS.map((step) => new Queue(`chain-${step}`, { connection, prefix }));
  const handoffs: number[] = [];
  const last = STEPS.length - 1;
  const workers = STEPS.map(
    (step, i) =>
      new Worker(
        `chain-${step}`,
        async (job) => {
          if (i < last) {
            const next = await queues[i + 1].add(STEPS[i + 1], { chain: job.data.chain }, { removeOnComplete: true });
            handoffs.push(next.timestamp - job.processedOn!);
          }
          return { ok: true };
        },
        { connection, prefix, concurrency: CONCURRENCY, removeOnComplete: { count: 0 } },
      ),
  );
  const done = completions(workers[last], jobs);
  const started = performance.now();
  await queues[0].addBulk(Array.from({ length: jobs }, (_, chain) => ({ name: STEPS[0], data: { chain }, opts: { removeOnComplete: true } })));
  await done;
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.obliterate({ force: true }).then(() => q.close())));
  connection.disconnect();
  return { seconds, jobsPerSecond: jobs / seconds, handoffs };
}

/** One static flow per job, added in one call; hand-off: child finished -> parent started. */
export async function benchFlowProducer(config: Config, jobs: number): Promise<BaselineRun> {
  const connection = connectRedis(config.REDIS_URL);
  const prefix = `${config.QUEUE_PREFIX}-flow`;
  const finishedAt = new Map<string, number>();
  const startedAt = new Map<string, number>();
  const key = (step: string, job: Job) => `${job.data.flow}:${step}`;
  const workers = STEPS.map((step) => {
    const worker = new Worker(
      `flow-${step}`,
      async (job) => {
        startedAt.set(key(step, job), job.processedOn!);
        return { ok: true };
      },
      { connection, prefix, concurrency: CONCURRENCY },
    );
    worker.on('completed', (job) => finishedAt.set(key(step, job), job.finishedOn!));
    return worker;
  });
  const producer = new FlowProducer({ connection, prefix });
  const opts = { removeOnComplete: true };
  const flow = (i: number) => ({
    name: 'validate',
    queueName: 'flow-validate',
    data: { flow: i },
    opts,
    children: [{ name: 'generate', queueName: 'flow-generate', data: { flow: i }, opts, children: [{ name: 'prompt', queueName: 'flow-prompt', data: { flow: i }, opts }] }],
  });
  const done = completions(workers[STEPS.length - 1], jobs);
  const started = performance.now();
  await producer.addBulk(Array.from({ length: jobs }, (_, i) => flow(i)));
  await done;
  const seconds = (performance.now() - started) / 1000;
  const handoffs: number[] = [];
  for (let i = 0; i < jobs; i++) {
    for (let s = 1; s < STEPS.length; s++) handoffs.push(startedAt.get(`${i}:${STEPS[s]}`)! - finishedAt.get(`${i}:${STEPS[s - 1]}`)!);
  }
  await Promise.all(workers.map((w) => w.close()));
  await producer.close();
  await Promise.all(STEPS.map((step) => new Queue(`flow-${step}`, { connection, prefix })).map((q) => q.obliterate({ force: true }).then(() => q.close())));
  connection.disconnect();
  return { seconds, jobsPerSecond: jobs / seconds, handoffs };
}

/** Resolves once `worker` has completed `count` jobs. */
export function completions(worker: Worker, count: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => worker.on('completed', () => ++seen === count && resolve()));
}
