import { z } from 'zod';
import { IdentityId, S3Key, TraceCarrier } from './common';
import { TrainingPhoto, TrainingResolution } from './prepareIdentityStep';

/** What a training run is asked to do; the bounds are the worker's (gpu-worker training/recipe.py). */
export const TrainingRecipe = z.strictObject({
  steps: z.number().int().min(1).max(10_000),
  rank: z.number().int().min(1).max(128),
  learningRate: z.number().min(0).max(0.01),
  resolution: TrainingResolution,
  seed: z.number().int().min(0).max(2 ** 32 - 1),
  /** A checkpoint goes to S3 every this many steps: the most work a killed worker's retry repeats. */
  checkpointEvery: z.number().int().min(1).max(10_000),
});

/**
 * Queue `train_identity` (pool `training`): a LoRA on the training model's transformer from the
 * prepared photos. Progress (step, total, loss) goes to the job's progress and the identity's event
 * log; a checkpoint to `checkpointKey` every `checkpointEvery` steps, from which a retried step
 * resumes; cancellation stops it between steps; the LoRA (.safetensors, diffusers-loadable) goes to
 * `loraKey`.
 */
export const TrainIdentityStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  identityId: IdentityId,
  photos: z.array(TrainingPhoto).min(1).max(20),
  recipe: TrainingRecipe,
  checkpointKey: S3Key,
  loraKey: S3Key,
});

export const TrainIdentityStepResult = z.object({
  loraKey: S3Key,
  /** Always the recipe's steps: a cancelled run fails instead. */
  stepsDone: z.number().int().min(1),
  /** The mean loss of the last steps (those in `recentLosses`). */
  lossAverage: z.number().min(0),
  /** The loss of each of the last (up to 50) steps, the last one last. */
  recentLosses: z.array(z.number().min(0)).max(50),
  /** The step the run started from: 0, or the checkpoint's step where a retry resumed. */
  resumedFromStep: z.number().int().min(0),
  timings: z.record(z.string(), z.number()).default({}),
});

export type TrainingRecipe = z.infer<typeof TrainingRecipe>;
export type TrainIdentityStepInput = z.infer<typeof TrainIdentityStepInput>;
export type TrainIdentityStepResult = z.infer<typeof TrainIdentityStepResult>;
