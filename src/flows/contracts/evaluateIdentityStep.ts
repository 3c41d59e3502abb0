import { z } from 'zod';
import { IdentityId, S3Key, TraceCarrier } from './common';
import { TrainingResolution, TriggerToken } from './prepareIdentityStep';

/** What a held-out portrait shows beside the person (clothes, setting, light): not a training caption. */
export const HeldOutPrompt = z.string().min(1).max(300);

/**
 * Queue `evaluate_identity` (pool `training`): whether training helped. Each held-out portrait is
 * rendered twice on the training pipeline with the same seed, without the identity's LoRA and with
 * it, from `a photo of <triggerToken> person, <prompt>`; each render goes to S3 under `outputPrefix`
 * and its largest face is compared with every photo embedding that `prepare_identity` wrote (the
 * median distance, as the identity gate reads it). The LoRA is taken out of the pipeline afterwards,
 * so it trains the next identity as it was.
 */
export const EvaluateIdentityStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  identityId: IdentityId,
  /** `prepare_identity`'s result: each photo's face embedding. */
  embeddingsKey: S3Key,
  /** `train_identity`'s result: the .safetensors LoRA. */
  loraKey: S3Key,
  /** The held-out portraits; absent: the first `count` of the worker's own. */
  prompts: z.array(HeldOutPrompt).min(1).max(8).optional(),
  /** How many of the worker's own held-out portraits, where `prompts` is absent (default 3). */
  count: z.number().int().min(1).max(8).optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1),
  /** The side of the square renders: the training resolution's bounds. */
  size: TrainingResolution,
  /** Denoising steps per render; absent: the worker's default. */
  steps: z.number().int().min(1).max(100).optional(),
  triggerToken: TriggerToken,
  /** Renders go to `<outputPrefix>/<index>.without-lora.png` and `<outputPrefix>/<index>.with-lora.png`. */
  outputPrefix: S3Key,
});

/** The median distance over the renders that show a face; null where none does. */
const MedianDistance = z.number().min(0).nullable();

export const EvaluationRender = z.object({
  key: S3Key,
  prompt: z.string(),
  withLora: z.boolean(),
  faceFound: z.boolean(),
  /** The render's largest face to every photo of the identity, their median; null without a face. */
  distance: MedianDistance,
});

export const EvaluateIdentityStepResult = z.object({
  /** Per prompt, in order: the render without the LoRA, then the one with it. */
  renders: z.array(EvaluationRender).min(2),
  /** The likeness with and without the trained LoRA (lower is closer): the number that tells whether training helped. */
  summary: z.object({
    medianDistanceWithLora: MedianDistance,
    medianDistanceWithoutLora: MedianDistance,
    rendersWithFace: z.object({ withLora: z.number().int().min(0), withoutLora: z.number().int().min(0) }),
  }),
  timings: z.record(z.string(), z.number()).default({}),
});

export type EvaluateIdentityStepInput = z.infer<typeof EvaluateIdentityStepInput>;
export type EvaluateIdentityStepResult = z.infer<typeof EvaluateIdentityStepResult>;
