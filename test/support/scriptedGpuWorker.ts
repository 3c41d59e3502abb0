import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import sharp from 'sharp';
import type { Config } from '../../src/config';
import type { z } from 'zod';
import { STEPS, STEP_NAMES, type StepInput, type StepName } from '../../src/flows/steps/registry';
import { GPU_QUEUES, type GpuQueue } from '../../src/flows/queues';
import type { ObjectStore } from '../../src/store/objectStore';

/** What a step returns, as its worker writes it (defaults such as a verdict's `best` may be left out). */
type Sent<S extends StepName> = z.input<(typeof STEPS)[S]['result']>;
type Handler<S extends StepName> = (input: StepInput<S>, job: Job) => Promise<Sent<S>> | Sent<S>;
export type GpuScript = { [S in StepName]?: Handler<S> };
export type GpuCall = { step: StepName; stepJobId: string; attemptsMade: number; input: any };

/**
 * Stands in for the Python GPU worker on the real GPU queues where the models are not the subject
 * of a test (the full-stack suite runs the real one): validates each payload
 * against its contract like the real worker must, runs the test's script (or a plausible default),
 * writes real images to S3 and records every call so tests can assert what ran, and how often.
 */
export class ScriptedGpuWorker {
  readonly calls: GpuCall[] = [];
  private workers: Worker[] = [];

  constructor(
    private readonly config: Config,
    private readonly connection: ConnectionOptions,
    private readonly objects: ObjectStore,
    /** What each step does instead of its default; a test may change it between its cases. */
    readonly script: GpuScript = {},
    private readonly steps: StepName[] = STEP_NAMES,
  ) {}

  start(concurrency = 8, lockMs?: number): this {
    // Every queue that carries one of the steps (a portrait's generate has a queue of its own).
    const queues = (Object.entries(GPU_QUEUES) as [GpuQueue, StepName][]).filter(([, step]) => this.steps.includes(step));
    this.workers = queues.map(
      ([queue, step]) =>
        new Worker(queue, (job) => this.run(step, job), {
          connection: this.connection,
          prefix: this.config.QUEUE_PREFIX,
          concurrency,
          // Short locks let a test see a killed worker's jobs taken over within seconds.
          ...(lockMs ? { lockDuration: lockMs, stalledInterval: lockMs } : {}),
        }),
    );
    return this;
  }

  /** The calls for a job, generation or identity (whose steps name it as identityId). */
  callsFor(jobId: string, step?: StepName) {
    return this.calls.filter((c) => (c.input.jobId ?? c.input.identityId) === jobId && (!step || c.step === step));
  }

  /** Forced: a scripted step that never finishes must not hold the test up. */
  async close() {
    await Promise.all(this.workers.map((w) => w.close(true)));
  }

  private async run(step: StepName, job: Job) {
    const parsed = STEPS[step].input.safeParse(job.data);
    if (!parsed.success) throw new UnrecoverableError(`invalid ${step} payload: ${parsed.error.issues[0].path.join('.')}`);
    this.calls.push({ step, stepJobId: job.id!, attemptsMade: job.attemptsMade, input: parsed.data });
    const handler = (this.script[step] ?? this.defaults[step]) as Handler<StepName>;
    return handler(parsed.data as never, job);
  }

  /** What each step does unless the script says otherwise (a script may call these). */
  readonly defaults: { [S in StepName]: Handler<S> } = {
    prompt: ({ parameters, attempt, previous }) => ({
      prompt: `${parameters.purpose} portrait, ${parameters.attire}, attempt ${attempt}${previous ? `; fix: ${previous.feedback}` : ''}`,
    }),
    generate: async ({ width, height, seed, outputPrefix, numImages }) => {
      const images = [];
      for (let i = 0; i < numImages; i++) {
        const key = `${outputPrefix}/${i}.png`;
        const png = await sharp({ create: { width, height, channels: 3, background: { r: seed % 256, g: 120, b: 90 } } })
          .png({ compressionLevel: 1 })
          .toBuffer();
        await this.objects.put(key, png, 'image/png');
        images.push({ key, width, height, contentType: 'image/png' });
      }
      return { images, seed, timings: { denoiseSeconds: 0.002, uploadSeconds: 0.001 } };
    },
    validate: ({ expectedWidth, expectedHeight }) => ({
      passed: true,
      score: 0.9,
      checks: [{ name: 'dimensions', passed: true, value: `${expectedWidth}x${expectedHeight}` }],
      feedback: '',
    }),
    report: ({ attempts }) => ({
      summary: `all ${attempts.length} attempts failed validation`,
      failedChecks: [],
      suggestions: ['try a different reference photo'],
    }),
    caption_identity: ({ photos, triggerToken }) => ({ photos: photos.map(({ key }) => ({ key, caption: `a photo of ${triggerToken} person` })) }),
    // The framed photos and their embeddings as the real step writes them: photo i's face lies i²/10
    // from the origin along one axis (of 5 photos, 2, 1, 3, 0, 4 is the order of typicality: bestPhotos.ts).
    prepare_identity: async ({ photoKeys, outputPrefix, triggerToken }) => {
      const photos = photoKeys.map((_, i) => ({ key: `${outputPrefix}/${i}.png`, caption: `a photo of ${triggerToken} person` }));
      const embeddings = photos.map(({ key }, i) => ({ key, embedding: Array.from({ length: 128 }, (_, d) => (d === 0 ? (i * i) / 10 : 0)), faceBox: [40, 40, 160, 160] }));
      await this.objects.put(`${outputPrefix}/embeddings.json`, Buffer.from(JSON.stringify({ model: 'dlib_face_recognition_resnet_model_v1', photos: embeddings })), 'application/json');
      for (const { key } of photos) await this.objects.put(key, Buffer.from('framed photo'), 'image/png');
      return { photos, embeddingsKey: `${outputPrefix}/embeddings.json` };
    },
    // Every photo shows one face: the real check (dlib on real faces) is the Python worker's, tested there and in identities.test.ts.
    check_identity_photos: ({ photoKeys }) => ({ photos: photoKeys.map(() => ({ accepted: true, faceBox: [40, 40, 160, 160] })) }),
    train_identity: async ({ recipe, loraKey }) => {
      await this.objects.put(loraKey, Buffer.from('a LoRA'), 'application/octet-stream');
      return { loraKey, stepsDone: recipe.steps, lossAverage: 0.1, recentLosses: [0.1], resumedFromStep: 0 };
    },
    // Training helped: every render shows a face, closer to the photos with the LoRA than without.
    evaluate_identity: async ({ outputPrefix, prompts, count }) => {
      const held = prompts ?? Array.from({ length: count ?? 3 }, (_, i) => `held-out portrait ${i}`);
      for (const [i] of held.entries()) for (const variant of ['without', 'with']) await this.objects.put(`${outputPrefix}/${i}.${variant}-lora.png`, Buffer.from(`render ${i} ${variant}`), 'image/png');
      return {
        renders: held.flatMap((prompt, i) =>
          [false, true].map((withLora) => ({ key: `${outputPrefix}/${i}.${withLora ? 'with' : 'without'}-lora.png`, prompt, withLora, faceFound: true, distance: withLora ? 0.4 : 0.6 })),
        ),
        summary: { medianDistanceWithLora: 0.4, medianDistanceWithoutLora: 0.6, rendersWithFace: { withLora: held.length, withoutLora: held.length } },
      };
    },
  };
}
