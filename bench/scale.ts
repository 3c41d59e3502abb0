/**
 * npm run bench:scale [-- --jobs N]
 *
 * Throughput of the portrait engine with 1 and then 3 orchestrator processes (instant GPU-step
 * doubles in this process, the same services), printed as jobs/s and as the ratio 3 : 1.
 */
import { Queue } from 'bullmq';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import mongoose from 'mongoose';
import sharp from 'sharp';
import { startServices } from '../scripts/services';
import { loadConfig, type Config } from '../src/config';
import { PortraitParameters } from '../src/flows/contracts/portraitParameters';
import { createPortraitJob, enqueuePortraitJob } from '../src/flows/portrait/submission';
import { QueueName } from '../src/flows/queues';
import { logger } from '../src/logger';
import { connectMongo } from '../src/store/mongo';
import { ObjectStore } from '../src/store/objectStore';
import { connectRedis } from '../src/redis';
import { CONCURRENCY, instantGpuSteps } from './instantGpu';

const ROOT = join(__dirname, '..');

function startOrchestrator(config: Config): Promise<ChildProcess> {
  const env = { ...process.env, ...Object.fromEntries(Object.entries(config).map(([k, v]) => [k, String(v)])), LOG_LEVEL: 'info' };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/workers/main.ts', '--role', 'orchestrator'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('worker started') && resolve(child));
    child.once('exit', (code) => reject(new Error(`orchestrator exited with ${code}`)));
  });
}

async function run(base: Config, processes: number, jobs: number) {
  const config = loadConfig({ ...Object.fromEntries(Object.entries(base).map(([k, v]) => [k, String(v)])), QUEUE_PREFIX: `scale${processes}x${Date.now()}`, ORCHESTRATOR_CONCURRENCY: String(CONCURRENCY) });
  const objects = ObjectStore.fromConfig(config);
  await objects.ensureBucket();
  const redis = connectRedis(config.REDIS_URL);
  const portraitQueue = new Queue(QueueName.portrait, { connection: redis, prefix: config.QUEUE_PREFIX });
  const photo = await sharp({ create: { width: 512, height: 640, channels: 3, background: '#888' } }).jpeg().toBuffer();
  const deps = { config, objects, portraitQueue };
  const request = { tenant: 'bench', parameters: PortraitParameters.parse({}), reference: { data: photo, contentType: 'image/jpeg', width: 512, height: 640 } };
  const states = [];
  for (let i = 0; i < jobs; i += CONCURRENCY) states.push(...(await Promise.all(Array.from({ length: Math.min(CONCURRENCY, jobs - i) }, () => createPortraitJob(deps, request)))));
  const stopGpu = instantGpuSteps(config);
  const orchestrators = await Promise.all(Array.from({ length: processes }, () => startOrchestrator(config)));
  const started = performance.now();
  await Promise.all(states.map((s) => enqueuePortraitJob(deps, s)));
  while ((await portraitQueue.getCompletedCount()) < jobs) await new Promise((r) => setTimeout(r, 20));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(orchestrators.map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')))));
  await stopGpu();
  await portraitQueue.close();
  redis.disconnect();
  objects.client.destroy();
  return { seconds, jobsPerSecond: jobs / seconds };
}

async function main() {
  const { values } = parseArgs({ options: { jobs: { type: 'string', default: '200' } } });
  const jobs = Number(values.jobs);
  logger.level = 'warn';
  const services = process.env.REDIS_URL ? undefined : await startServices();
  const env = { ...process.env, ...services?.env };
  const config = loadConfig({ ...env, LOG_LEVEL: 'error', MONGO_URL: `${env.MONGO_URL!.replace(/\/[^/]*$/, '')}/apex_scale_${Date.now()}` });
  await connectMongo(config.MONGO_URL);
  try {
    const one = await run(config, 1, jobs);
    const three = await run(config, 3, jobs);
    console.log(`\nscale benchmark: ${jobs} jobs, instant GPU doubles, ${CONCURRENCY} jobs in flight per orchestrator process\n`);
    console.log(`1 orchestrator process : ${one.jobsPerSecond.toFixed(1)} jobs/s (${one.seconds.toFixed(2)} s)`);
    console.log(`3 orchestrator processes: ${three.jobsPerSecond.toFixed(1)} jobs/s (${three.seconds.toFixed(2)} s)`);
    console.log(`ratio 3 : 1             : ${(three.jobsPerSecond / one.jobsPerSecond).toFixed(2)}`);
  } finally {
    await mongoose.disconnect();
    await services?.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
