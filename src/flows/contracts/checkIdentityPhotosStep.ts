import { z } from 'zod';
import { IdentityId, S3Key, TraceCarrier } from './common';

/**
 * Queue `check_identity_photos` (pool `vlm`, where the face models stay loaded and jobs are short,
 * never behind a training run): whether each photo sent for an identity shows exactly one face of
 * adequate size, with the validator's detector and threshold. POST /identities waits for it, so a
 * refused photo is named by its index and reason before anything is kept.
 */
export const CheckIdentityPhotosStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  /** The identity these photos would make (not created yet): the owner of the step, for cancellation and logs. */
  identityId: IdentityId,
  photoKeys: z.array(S3Key).min(1).max(20),
});

export const PhotoCheck = z.object({
  accepted: z.boolean(),
  /** Why it was refused, worded for the person who sent it; absent when accepted. */
  reason: z.string().max(300).optional(),
  /** The face found, [left, top, right, bottom] in the upright photo's pixels; absent without exactly one. */
  faceBox: z.array(z.number().int()).length(4).optional(),
});

export const CheckIdentityPhotosStepResult = z.object({
  /** In the order of `photoKeys`. */
  photos: z.array(PhotoCheck).min(1),
});

export type PhotoCheck = z.infer<typeof PhotoCheck>;
export type CheckIdentityPhotosStepInput = z.infer<typeof CheckIdentityPhotosStepInput>;
export type CheckIdentityPhotosStepResult = z.infer<typeof CheckIdentityPhotosStepResult>;
