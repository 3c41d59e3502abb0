/**
 * npm run bench:fairness [-- --step-ms 100 --b-jobs 20]
 *
 * Fair share between tenants (issue 23), on GPU doubles that take a fixed time per step, one worker
 * per GPU pool (one GPU each), the real orchestrators, Redis and MongoDB. Tenant A floods: a batch
 * of 100 generations and 100 portraits at once. Tenant B sends one job at a time (a generation, then
 * a portrait, and so on), each after the last has ended. Three runs in the same process:
 *   - B alone: no flood, the baseline;
 *   - B beside A's flood: two tenants, fair dispatch between them;
 *   - B's jobs in A's line: the same flood, B's jobs submitted as A's, which is how first-in,
 *     first-out dispatch (before fair dispatch) treated every tenant.
 * Prints B's step waits (queued -> started), each job's first step wait, and B's job completion
 * (submitted -> ended), p50 and p99, and the goals against them.
 */
import { Queue } from 'bullmq';
import { Types } from 'mongoose';
import sharp from 'sharp';
import { parseArgs } from 'node:util';
import type { Config } from '../src/config';
import type { AttemptRecord, PortraitState } from '../src/flows/contracts/portraitState';
import { BatchTarget } from '../src/flows/contracts/batch';
import { GenerationRequest } from '../src/flows/contracts/generation';
import { PortraitParameters } from '../src/flows/contracts/portraitParameters';
import { submitBatch } from '../src/flows/batches/submission';
import { submitGeneration } from '../src/flows/generation/submission';
import { stepJobId } from '../src/flows/ids';
import { createPortraitJob, enqueuePortraitJob } from '../src/flows/portrait/submission';
import { QueueName, QueueSet } from '../src/flows/queues';
import { connectRedis } from '../src/redis';
import { GenerationModel } from '../src/store/generationModel';
import { JobModel } from '../src/store/jobModel';
import { ObjectStore } from '../src/store/objectStore';
import { startOrchestratorRole } from '../src/workers/orchestratorRole';
import { runBench, withBenchServices } from './benchServices';
import { instantGpuSteps } from './instantGpu';

const FLOOD = { generations: 100, portraits: 100 };

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type BJob = { stepWaits: number[]; completionMs: number };

/** One run on its own queue prefix: the flood (unless none), then B's jobs one at a time. */
async function run(base: Config, name: string, opts: { stepMs: number; bJobs: number; flood: boolean; bTenant: 'a' | 'b' }) {
  const config: Config = { ...base, QUEUE_PREFIX: `${base.QUEUE_PREFIX}${name}`, GPU_BUDGET_UNITS: 0, RATE_LIMIT_PER_MINUTE: 1_000_000 };
  const redis = connectRedis(config.REDIS_URL);
  const queues = new QueueSet(redis, config.QUEUE_PREFIX);
  const objects = ObjectStore.fromConfig(config);
  await objects.ensureBucket();
  const portraitQueue = queues.get(QueueName.portrait) as Queue<PortraitState>;
  const deps = { config, objects, portraitQueue };
  const photo = await sharp({ create: { width: 512, height: 640, channels: 3, background: '#888' } }).jpeg().toBuffer();
  const portraitRequest = (tenant: string) => ({ tenant, parameters: PortraitParameters.parse({}), references: [{ data: photo, contentType: 'image/jpeg', width: 512, height: 640 }] });
  const generationRequest = (prompt: string) => GenerationRequest.parse({ prompt, width: 512, height: 512 });

  // The flood's portraits are created (photo in S3, document) before the clock, as POST /jobs would have.
  const floodPortraits = opts.flood ? await Promise.all(Array.from({ length: FLOOD.portraits }, () => createPortraitJob(deps, portraitRequest('a')))) : [];
  const orchestrator = startOrchestratorRole(config);
  const stopGpu = instantGpuSteps(config, { stepMs: opts.stepMs, concurrency: 1 });
  const started = performance.now();
  if (opts.flood) {
    const requests = Array.from({ length: FLOOD.generations }, (_, i) => ({ prompt: `flood ${i}`, width: 512, height: 512 }));
    await submitBatch({ config, batchQueue: queues.get(QueueName.batch) }, { id: new Types.ObjectId().toHexString(), tenant: 'a', target: BatchTarget.parse({ type: 'generations', requests }) });
    await Promise.all(floodPortraits.map((state) => enqueuePortraitJob(deps, state)));
    // Until the flood's steps wait on the GPU queues.
    while ((await queues.get(QueueName.generate).getPrioritizedCount()) < 20) await sleep(20);
  }

  const bJobs: BJob[] = [];
  for (let i = 0; i < opts.bJobs; i++) {
    const submitted = Date.now();
    if (i % 2 === 0) {
      const id = new Types.ObjectId().toHexString();
      const { secrets: _none, ...request } = generationRequest(`b ${i}`);
      await submitGeneration({ config, queue: queues.get(QueueName.generation) }, { id, tenant: opts.bTenant, request });
      let doc;
      while (!(doc = await GenerationModel.findOne({ _id: id, finishedAt: { $exists: true } }, { finishedAt: 1 }).lean<{ finishedAt: Date }>())) await sleep(10);
      const step = (await queues.get(QueueName.generate).getJob(stepJobId(id, 'generate')))!;
      bJobs.push({ stepWaits: [step.processedOn! - step.timestamp], completionMs: doc.finishedAt.getTime() - submitted });
    } else {
      const state = await createPortraitJob(deps, portraitRequest(opts.bTenant));
      const enqueued = Date.now();
      await enqueuePortraitJob(deps, state);
      let doc;
      while (!(doc = await JobModel.findOne({ _id: state.jobId, finishedAt: { $exists: true } }, { finishedAt: 1, attempts: 1 }).lean<{ finishedAt: Date; attempts: AttemptRecord[] }>())) await sleep(10);
      const steps = doc.attempts.flatMap((a) => Object.values(a.steps)).filter((s) => s?.startedAt !== undefined);
      bJobs.push({ stepWaits: steps.map((s) => s!.startedAt! - s!.queuedAt), completionMs: doc.finishedAt.getTime() - enqueued });
    }
  }
  const bSeconds = (performance.now() - started) / 1000;
  const floodLeft = opts.flood ? (await queues.get(QueueName.generate).getPrioritizedCount()) + (await queues.get(QueueName.prompt).getPrioritizedCount()) : 0;

  await orchestrator.close();
  await stopGpu();
  for (const queue of [QueueName.portrait, QueueName.generation, QueueName.batch, QueueName.prompt, QueueName.generate, QueueName.portraitGenerate, QueueName.validate, QueueName.report]) {
    await queues.get(queue).obliterate({ force: true }).catch(() => undefined);
  }
  await queues.close();
  redis.disconnect();
  objects.client.destroy();
  return { bJobs, bSeconds, floodLeft };
}

async function main() {
  const { values } = parseArgs({ options: { 'step-ms': { type: 'string', default: '100' }, 'b-jobs': { type: 'string', default: '20' } } });
  const stepMs = Number(values['step-ms']);
  const bJobs = Number(values['b-jobs']);
  await withBenchServices('fair', async (config) => {
    const alone = await run(config, 'alone', { stepMs, bJobs, flood: false, bTenant: 'b' });
    const fair = await run(config, 'fair', { stepMs, bJobs, flood: true, bTenant: 'b' });
    const fifo = await run(config, 'fifo', { stepMs, bJobs, flood: true, bTenant: 'a' });
    const row = (label: string, r: Awaited<ReturnType<typeof run>>) => {
      const waits = r.bJobs.flatMap((j) => j.stepWaits);
      const firsts = r.bJobs.map((j) => j.stepWaits[0]);
      const done = r.bJobs.map((j) => j.completionMs);
      const left = r.floodLeft ? `, flood steps still waiting when B ended: ${r.floodLeft}` : '';
      console.log(
        `${label.padEnd(34)} step wait p50 ${percentile(waits, 50)} / p99 ${percentile(waits, 99)} ms; first step wait p50 ${percentile(firsts, 50)} / p99 ${percentile(firsts, 99)} ms; completion p50 ${percentile(done, 50)} / p99 ${percentile(done, 99)} ms (${r.bSeconds.toFixed(1)} s${left})`,
      );
      return { waits, done };
    };
    console.log(`\nfairness benchmark: GPU doubles ${stepMs} ms a step, one worker per GPU pool; A floods ${FLOOD.generations} generations (one batch) and ${FLOOD.portraits} portraits; B sends ${bJobs} jobs one at a time (generations and portraits in turn)\n`);
    const a = row('B alone', alone);
    const f = row("B beside A's flood (fair dispatch)", fair);
    row("B's jobs in A's line (FIFO)", fifo);
    const ratio = (x: number, y: number) => (x / y).toFixed(2);
    console.log(`\ngoals, with one competing tenant: B's step wait p99 within one step (${stepMs} ms): ${percentile(f.waits, 99)} ms (${ratio(percentile(f.waits, 99), stepMs)} steps)`);
    console.log(`B's completion within 2x its time alone: p50 ${ratio(percentile(f.done, 50), percentile(a.done, 50))}x, p99 ${ratio(percentile(f.done, 99), percentile(a.done, 99))}x`);
  });
}

runBench(main);
