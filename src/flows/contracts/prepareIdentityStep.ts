import { z } from 'zod';
import { IdentityId, S3Key, TraceCarrier } from './common';

/**
 * The side of the square a photo is framed to and trained at: the VAE's 8x and FLUX's 2x2 packing
 * need a multiple of 16; the bounds are the training recipe's (gpu-worker training/recipe.py).
 */
export const TrainingResolution = z.number().int().min(64).max(2048).multipleOf(16);

/** The word that stands for the person in every caption, and later in every portrait's instruction. */
export const TriggerToken = z.string().regex(/^[A-Za-z][A-Za-z0-9_]{1,31}$/, 'must be one word of 2 to 32 letters, digits or "_"');

/**
 * Queue `prepare_identity` (pool `training`): each of an identity's uploaded photos turned upright,
 * refused unless it shows exactly one face of adequate size (a refusal names the photo's index),
 * framed around that face as a square at the training resolution, captioned around the trigger
 * token, and its face embedding kept for the identity gate.
 */
export const PrepareIdentityStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  identityId: IdentityId,
  /** The uploaded photos, in the deployment's bucket (biometric data stays where erasure finds it). */
  photoKeys: z.array(S3Key).min(1).max(20),
  resolution: TrainingResolution,
  triggerToken: TriggerToken,
  /** The framed photos are written as `<outputPrefix>/<index>.png`, the embeddings as `<outputPrefix>/embeddings.json`. */
  outputPrefix: S3Key,
});

/** A photo as training takes it: the framed square and its caption. */
export const TrainingPhoto = z.strictObject({ key: S3Key, caption: z.string().min(1).max(500) });

export const PrepareIdentityStepResult = z.object({
  /** In the order of `photoKeys`. */
  photos: z.array(TrainingPhoto).min(1),
  /** JSON: each photo's 128-d face embedding and face box, in the order of `photos`. */
  embeddingsKey: S3Key,
});

export type PrepareIdentityStepInput = z.infer<typeof PrepareIdentityStepInput>;
export type PrepareIdentityStepResult = z.infer<typeof PrepareIdentityStepResult>;
