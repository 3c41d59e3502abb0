import { WebhookSpec } from '../webhooks/events';
import { z } from 'zod';
import { AttemptNumber, IdentityId, JobId, ReferenceImageKeys, S3Key, TraceCarrier } from './common';
import { GeneratedImage, LoraSpec, PixelProvenance } from './generateStep';
import { PortraitParameters } from './portraitParameters';
import { ReportStepResult } from './reportStep';
import { JobErrorCode } from './stepErrors';
import { ValidateStepResult } from './validateStep';

export const StepRecord = z.object({
  stepJobId: z.string(),
  status: z.enum(['queued', 'completed', 'failed', 'timed_out']),
  queuedAt: z.number(),
  startedAt: z.number().optional(),
  finishedAt: z.number().optional(),
  /** BullMQ attempts used, retries of transient failures included. */
  tries: z.number().int().optional(),
  error: z.string().optional(),
});

export const AttemptRecord = z.object({
  number: AttemptNumber,
  status: z.enum(['running', 'passed', 'rejected', 'errored']),
  seed: z.number().int(),
  prompt: z.string().optional(),
  negativePrompt: z.string().optional(),
  images: z.array(GeneratedImage).default([]),
  pixels: PixelProvenance.optional(),
  verdict: ValidateStepResult.optional(),
  steps: z.object({
    prompt: StepRecord.optional(),
    generate: StepRecord.optional(),
    validate: StepRecord.optional(),
  }),
});

export const JobError = z.object({
  code: JobErrorCode,
  /** Written for the caller; a coded step failure's own wording stays in the logs. */
  message: z.string(),
  /** Whether retrying the job as it is may end differently (coded step failures say). */
  retryable: z.boolean().optional(),
  step: z.string().optional(),
  attempt: z.number().int().optional(),
});

/**
 * The orchestrator's state machine, kept in the BullMQ job's data (so a restarted orchestrator
 * resumes where it stopped). The Job document is written from it at the transitions a reader needs
 * (portrait/jobDocument.ts), so between them the document lags behind it by design.
 * The next step is derived from it (see planNextStep), never stored separately.
 */
export const PortraitState = z.object({
  jobId: JobId,
  parameters: PortraitParameters,
  referenceImageKey: S3Key,
  /** Every photo of the person, the first being referenceImageKey; absent in jobs queued before several photos (referenceKeysOf). */
  referenceImageKeys: ReferenceImageKeys.optional(),
  maxAttempts: z.number().int().min(1),
  attempts: z.array(AttemptRecord).default([]),
  report: z
    .object({ step: StepRecord, result: ReportStepResult.optional() })
    .optional(),
  error: JobError.optional(),
  tenant: z.string().optional(),
  webhook: WebhookSpec.optional(),
  /** The trace of the request that started (or retried) the job, when tracing is on. */
  trace: TraceCarrier.optional(),
  /** Attempt cycles: 1, then one more per retry; `history` keeps how each earlier cycle ended. */
  cycle: z.number().int().min(1).default(1),
  history: z
    .array(z.object({ cycle: z.number().int(), status: z.string(), error: JobError.optional(), report: z.unknown().optional() }))
    .default([]),
  /** Images rendered per attempt in one batched call (best of N); validate keeps the best. */
  candidates: z.number().int().min(1).max(4).default(1),
  /** Identity LoRAs applied on top of the portrait model in every attempt. */
  loras: z.array(LoraSpec).max(8).default([]),
  /** A private LoRA repo's hf_token, sealed for this job (flows/secrets.ts); opened only by the generate step. */
  secrets: z.string().max(8192).optional(),
  /**
   * A portrait of a learnt identity (POST /jobs with identity_id): its LoRA and trigger token go to
   * every generate step, its photos' embeddings to the identity gate; its best photos are the references.
   */
  identity: z.object({ identityId: IdentityId, loraKey: S3Key, triggerToken: z.string(), embeddingsKey: S3Key }).optional(),
  /** Set once a cancel request is seen; the job then ends `cancelled` whatever its step did. */
  cancelled: z.boolean().optional(),
});

export type StepRecord = z.infer<typeof StepRecord>;
export type AttemptRecord = z.infer<typeof AttemptRecord>;
export type JobError = z.infer<typeof JobError>;
export type PortraitState = z.infer<typeof PortraitState>;
