import { z } from 'zod';
import { AttemptNumber, JobId, ReferenceImageKeys, S3Key, TraceCarrier } from './common';
import { PortraitParameters } from './portraitParameters';

/** Queue `validate`: deterministic checks plus a VLM judgement of each candidate image of one attempt. */
export const ValidateStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  jobId: JobId,
  attempt: AttemptNumber,
  parameters: PortraitParameters,
  referenceImageKey: S3Key,
  /** Every photo of the person, the first being referenceImageKey: the identity gate compares the portrait's face with each. Absent: referenceImageKey alone. */
  referenceImageKeys: ReferenceImageKeys.optional(),
  /**
   * A portrait of an identity: the JSON of its photos' face embeddings that `prepare_identity` wrote.
   * The identity gate then compares the portrait's face with every one of them (their median;
   * `distances` lists each) instead of with the faces of the reference photos.
   */
  identityEmbeddingsKey: S3Key.optional(),
  /** The attempt's candidates (best of N): each is judged, the best one is the attempt's verdict. */
  imageKeys: z.array(S3Key).min(1).max(4),
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
  /** identity_distance: where the compared faces are, [left, top, right, bottom] in pixels (null: none found); `reference` is the first photo's. */
  faceBoxes: z.strictObject({ reference: FaceBox.nullable(), image: FaceBox.nullable() }).optional(),
  /** identity_distance: the distance to each reference photo's face, in their order (null: no face in that photo); `value` is their median. */
  distances: z.array(z.number().nullable()).optional(),
});

const Verdict = z.object({
  passed: z.boolean(),
  score: z.number().min(0).max(1),
  checks: z.array(ValidationCheck),
  /** Feeds the next attempt's prompt step. */
  feedback: z.string(),
  /** Whether the VLM judged this image: `skipped` when a gating deterministic check failed first (the image is not shown to the VLM; `reason` names the failed checks, which are the feedback). Absent in verdicts from before it was recorded. */
  judgement: z
    .strictObject({ status: z.enum(['judged', 'skipped']), reason: z.string().max(2000).optional() })
    .optional(),
});

/** The best candidate's verdict, which candidate that is, and every candidate's own verdict. */
export const ValidateStepResult = Verdict.extend({
  best: z.number().int().min(0).max(3).default(0),
  candidates: z.array(Verdict.extend({ imageKey: S3Key })).max(4).optional(),
});

export type ValidationCheck = z.infer<typeof ValidationCheck>;
export type ValidateStepInput = z.infer<typeof ValidateStepInput>;
export type ValidateStepResult = z.infer<typeof ValidateStepResult>;
