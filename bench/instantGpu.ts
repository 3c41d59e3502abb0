import { Worker, type Job } from 'bullmq';
import type { Config } from '../src/config';
import { GPU_QUEUES, type GpuQueue } from '../src/flows/queues';
import type { StepName } from '../src/flows/steps/registry';
import { connectRedis } from '../src/redis';

export const CONCURRENCY = 50;

/**
 * GPU steps that answer at once, so the engine's own overhead is what gets measured; or, with
 * `stepMs`, after that fixed time, each pool taking `concurrency` steps at once (a GPU each).
 */
export function instantGpuSteps(config: Config, opts: { stepMs?: number; concurrency?: number } = {}) {
  const { stepMs = 0, concurrency = CONCURRENCY } = opts;
  const results: Record<StepName, (job: Job) => unknown> = {
    prompt: () => ({ prompt: 'a professional portrait' }),
    generate: (job) => ({
      images: [{ key: `${job.data.outputPrefix}/0.png`, width: job.data.width, height: job.data.height, contentType: 'image/png' }],
      seed: job.data.seed,
    }),
    validate: () => ({ passed: true, score: 0.9, checks: [], feedback: '' }),
    report: () => ({ summary: 'n/a', failedChecks: [], suggestions: [] }),
    caption_identity: (job) => ({ photos: job.data.photos.map(({ key }: { key: string }) => ({ key, caption: 'a photo of tok person' })) }),
    prepare_identity: (job) => ({
      photos: job.data.photoKeys.map((_: string, i: number) => ({ key: `${job.data.outputPrefix}/${i}.png`, caption: 'a photo of tok person' })),
      embeddingsKey: `${job.data.outputPrefix}/embeddings.json`,
    }),
    check_identity_photos: (job) => ({ photos: job.data.photoKeys.map(() => ({ accepted: true, faceBox: [10, 10, 60, 60] })) }),
    train_identity: (job) => ({ loraKey: job.data.loraKey, stepsDone: job.data.recipe.steps, lossAverage: 0.1, recentLosses: [0.1], resumedFromStep: 0 }),
    evaluate_identity: (job) => ({
      renders: [false, true].map((withLora) => ({ key: `${job.data.outputPrefix}/0.${withLora ? 'with' : 'without'}-lora.png`, prompt: 'n/a', withLora, faceFound: true, distance: withLora ? 0.4 : 0.6 })),
      summary: { medianDistanceWithLora: 0.4, medianDistanceWithoutLora: 0.6, rendersWithFace: { withLora: 1, withoutLora: 1 } },
    }),
  };
  const connection = connectRedis(config.REDIS_URL);
  const workers = (Object.entries(GPU_QUEUES) as [GpuQueue, StepName][]).map(
    ([queue, step]) =>
      new Worker(queue, async (job) => (stepMs > 0 ? new Promise((r) => setTimeout(r, stepMs)).then(() => results[step](job)) : results[step](job)), {
        connection,
        prefix: config.QUEUE_PREFIX,
        concurrency,
      }),
  );
  return async () => {
    await Promise.all(workers.map((w) => w.close()));
    connection.disconnect();
  };
}

