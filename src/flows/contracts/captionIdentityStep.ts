import { z } from 'zod';
import { IdentityId, S3Key, TraceCarrier } from './common';
import { TrainingPhoto, TriggerToken } from './prepareIdentityStep';

/**
 * Queue `caption_identity` (pool `vlm`): a caption for each of an identity's framed photos, written
 * around the trigger token by the VLM. The VLM describes what is not the person's identity (clothing,
 * setting, light, framing, expression), so training ties those to the words and the face to the
 * token; each caption is `a photo of <triggerToken> person, <description>`, or the plain
 * `a photo of <triggerToken> person` where the VLM's answer is unusable.
 */
export const CaptionIdentityStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  identityId: IdentityId,
  /** The framed photos (`prepare_identity`'s result), in the deployment's bucket. */
  photos: z.array(z.strictObject({ key: S3Key })).min(1).max(20),
  triggerToken: TriggerToken,
});

export const CaptionIdentityStepResult = z.object({
  /** In the order of the input's `photos`, each with its caption. */
  photos: z.array(TrainingPhoto).min(1),
});

export type CaptionIdentityStepInput = z.infer<typeof CaptionIdentityStepInput>;
export type CaptionIdentityStepResult = z.infer<typeof CaptionIdentityStepResult>;
