import { z } from 'zod';
import { AttemptNumber, JobId, S3Key, TraceCarrier } from './common';
import { PortraitParameters } from './portraitParameters';
import { ValidateStepResult } from './validateStep';

/** Queue `report`: failure analysis once every attempt failed validation. */
export const ReportStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  jobId: JobId,
  parameters: PortraitParameters,
  referenceImageKey: S3Key,
  attempts: z
    .array(
      z.strictObject({
        attempt: AttemptNumber,
        prompt: z.string(),
        imageKeys: z.array(S3Key),
        verdict: ValidateStepResult,
      }),
    )
    .min(1),
});

export const ReportStepResult = z.object({
  summary: z.string().min(1),
  failedChecks: z.array(z.object({ name: z.string(), count: z.number().int().min(0) })),
  suggestions: z.array(z.string()),
});

export type ReportStepInput = z.infer<typeof ReportStepInput>;
export type ReportStepResult = z.infer<typeof ReportStepResult>;
