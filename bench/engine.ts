/**
 * npm run bench:engine [-- --jobs N]
 *
 * Throughput of the portrait engine (real orchestrator, MongoDB writes, S3 reference upload, instant
 * GPU-step doubles) against two BullMQ baselines with the same three steps per job — a bare
 * three-queue chain and a static FlowProducer flow — on the same Redis in the same run, each with
 * 50 jobs in flight. Prints jobs/s, the engine's ratio to each, the latency between steps at
 * p50/p99, and what each job cost (Redis commands and CPU, MongoDB writes, this process's CPU).
 */
import mongoose from 'mongoose';
import { parseArgs } from 'node:util';
import type { Config } from '../src/config';
import type { AttemptRecord } from '../src/flows/contracts/portraitState';
import { QueueName } from '../src/flows/queues';
import { JobModel } from '../src/store/jobModel';
import { startOrchestratorRole } from '../src/workers/orchestratorRole';
import { benchFlowProducer, benchRawChain, IN_FLIGHT, keepInFlight } from './baselines';
import { runBench, withBenchServices } from './benchServices';
import { CONCURRENCY } from './instantGpu';
import { portraitBench } from './portraitJobs';
import { perJob } from './serverCounters';

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};

async function benchEngine(config: Config, jobs: number) {
  const bench = await portraitBench(config, jobs);
  const orchestrator = startOrchestratorRole(config, CONCURRENCY);
  const portraitWorker = orchestrator.workers.find((w) => w.name === QueueName.portrait)!;
  const run = await keepInFlight(bench.redis, jobs, portraitWorker, bench.enqueue);

  // Hand-off: a step finished -> the next one queued (the orchestrator's part); gap: -> it started.
  const handoffs: number[] = [];
  const gaps: number[] = [];
  for (const job of await JobModel.find({}, { attempts: 1 }).lean()) {
    for (const attempt of job.attempts as AttemptRecord[]) {
      const { prompt, generate, validate } = attempt.steps;
      handoffs.push(generate!.queuedAt - prompt!.finishedAt!, validate!.queuedAt - generate!.finishedAt!);
      gaps.push(generate!.startedAt! - prompt!.finishedAt!, validate!.startedAt! - generate!.finishedAt!);
    }
  }
  await orchestrator.close();
  await bench.close();
  return { ...run, jobsPerSecond: jobs / run.seconds, handoffs, gaps };
}

/** The MongoDB server's own ceiling: concurrent single-document updates of the size the engine writes. */
async function benchMongoUpdates(updates: number) {
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
  return updates / seconds;
}

async function main() {
  const { values } = parseArgs({ options: { jobs: { type: 'string', default: '300' } } });
  const jobs = Number(values.jobs);
  await withBenchServices('bench', async (config) => {
    const mongoUpdatesPerSecond = await benchMongoUpdates(1000);
    const chain = await benchRawChain(config, jobs);
    const flow = await benchFlowProducer(config, jobs);
    const engine = await benchEngine(config, jobs);
    const fmt = (n: number) => n.toFixed(1);
    const latency = (values: number[]) => `p50 ${percentile(values, 50)} ms, p99 ${percentile(values, 99)} ms`;
    console.log(`\nengine benchmark: ${jobs} jobs x 3 steps, ${IN_FLIGHT} jobs in flight, workers' concurrency ${CONCURRENCY}, one Redis\n`);
    console.log(`raw BullMQ 3-queue chain : ${fmt(chain.jobsPerSecond)} jobs/s (${chain.seconds.toFixed(2)} s)`);
    console.log(`BullMQ FlowProducer flow : ${fmt(flow.jobsPerSecond)} jobs/s (${flow.seconds.toFixed(2)} s)`);
    console.log(`portrait engine          : ${fmt(engine.jobsPerSecond)} jobs/s (${engine.seconds.toFixed(2)} s)`);
    console.log(`ratio engine/chain       : ${(engine.jobsPerSecond / chain.jobsPerSecond).toFixed(2)}`);
    console.log(`ratio engine/flow        : ${(engine.jobsPerSecond / flow.jobsPerSecond).toFixed(2)}`);
    console.log(`\nlatency between steps`);
    console.log(`  engine hand-off (step finished -> next step queued) : ${latency(engine.handoffs)}`);
    console.log(`  engine gap      (step finished -> next step started): ${latency(engine.gaps)}`);
    console.log(`  flow gap        (child finished -> parent started)  : ${latency(flow.gaps)}`);
    console.log(`  chain gap       (step finished -> next step started): ${latency(chain.gaps)}`);
    console.log(`\nper job`);
    console.log(`  chain : ${perJob(chain.cost, jobs)}`);
    console.log(`  flow  : ${perJob(flow.cost, jobs)}`);
    console.log(`  engine: ${perJob(engine.cost, jobs)}`);
    console.log(`\nMongoDB server alone: ${fmt(mongoUpdatesPerSecond)} single-document updates/s with ${CONCURRENCY} writers`);
  });
}

runBench(main);
