import { z } from 'zod';
import { AttemptNumber, JobId, S3Key, TraceCarrier } from './common';
import { PortraitParameters } from './portraitParameters';

/** Queue `validate`: deterministic checks plus a VLM judgement of one generated image. */
export const ValidateStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  jobId: JobId,
  attempt: AttemptNumber,
  parameters: PortraitParameters,
  referenceImageKey: S3Key,
  imageKey: S3Key,
  prompt: z.string(),
  expectedWidth: z.number().int().positive(),
  expectedHeight: z.number().int().positive(),
});

const FaceBox = z.array(z.number().int()).length(4);

/** One check with the value it measured, so a verdict can be audited, not just trusted. */
export const ValidationCheck = z.object({
  name: z.string().min(1),
  passed: z.boolean(),
  value: z.union([z.number(), z.string(), z.boolean(), z.null()]),
  threshold: z.number().optional(),
  detail: z.string().optional(),
  /** identity_distance: where the compared faces are, [left, top, right, bottom] in pixels (null: none found). */
  faceBoxes: z.strictObject({ reference: FaceBox.nullable(), image: FaceBox.nullable() }).optional(),
});

export const ValidateStepResult = z.object({
  passed: z.boolean(),
  score: z.number().min(0).max(1),
  checks: z.array(ValidationCheck),
  /** Feeds the next attempt's prompt step. */
  feedback: z.string(),
});

export type ValidationCheck = z.infer<typeof ValidationCheck>;
export type ValidateStepInput = z.infer<typeof ValidateStepInput>;
export type ValidateStepResult = z.infer<typeof ValidateStepResult>;
