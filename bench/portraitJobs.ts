import { Queue } from 'bullmq';
import sharp from 'sharp';
import type { Config } from '../src/config';
import type { PortraitState } from '../src/flows/contracts/portraitState';
import { PortraitParameters } from '../src/flows/contracts/portraitParameters';
import { createPortraitJob, enqueuePortraitJob, type SubmissionDeps } from '../src/flows/portrait/submission';
import { QueueName } from '../src/flows/queues';
import { connectRedis } from '../src/redis';
import { ObjectStore } from '../src/store/objectStore';
import { CONCURRENCY, instantGpuSteps } from './instantGpu';

/**
 * Portrait jobs created the way POST /jobs creates them (reference photo in S3, Job document in
 * MongoDB) but not yet enqueued: the benchmarks create them before the clock starts and time only
 * the workflow, as the baselines' jobs are timed.
 */
async function createBenchJobs(deps: SubmissionDeps, jobs: number): Promise<PortraitState[]> {
  const photo = await sharp({ create: { width: 512, height: 640, channels: 3, background: '#888' } }).jpeg().toBuffer();
  const request = { tenant: 'bench', parameters: PortraitParameters.parse({}), references: [{ data: photo, contentType: 'image/jpeg', width: 512, height: 640 }] };
  const states: PortraitState[] = [];
  for (let i = 0; i < jobs; i += CONCURRENCY) {
    states.push(...(await Promise.all(Array.from({ length: Math.min(CONCURRENCY, jobs - i) }, () => createPortraitJob(deps, request)))));
  }
  return states;
}

/**
 * What a portrait-engine benchmark runs on: `jobs` portrait jobs created ahead of the clock, the
 * instant GPU doubles serving their steps, and `enqueue(i)` to start job i. The orchestrators are
 * the benchmark's own (in-process or separate processes).
 */
export async function portraitBench(config: Config, jobs: number) {
  const objects = ObjectStore.fromConfig(config);
  await objects.ensureBucket();
  const redis = connectRedis(config.REDIS_URL);
  const portraitQueue = new Queue(QueueName.portrait, { connection: redis, prefix: config.QUEUE_PREFIX });
  const deps = { config, objects, portraitQueue };
  const states = await createBenchJobs(deps, jobs);
  const stopGpu = instantGpuSteps(config);
  return {
    redis,
    portraitQueue,
    enqueue: (i: number) => enqueuePortraitJob(deps, states[i]),
    async close() {
      await stopGpu();
      await portraitQueue.close();
      redis.disconnect();
      objects.client.destroy();
    },
  };
}
