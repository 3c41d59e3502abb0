import { z } from 'zod';
import { AttemptNumber, JobId, S3Key, TraceCarrier } from './common';
import { PortraitParameters } from './portraitParameters';

/** Queue `prompt`: turn the reference photo and the parameters into this attempt's edit instruction for the image-editing model. */
export const PromptStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  jobId: JobId,
  attempt: AttemptNumber,
  parameters: PortraitParameters,
  referenceImageKey: S3Key,
  /** What the previous attempt asked for and what its validation said was wrong; null on attempt 1. */
  previous: z
    .strictObject({ prompt: z.string(), feedback: z.string() })
    .nullable(),
});

export const PromptStepResult = z.object({
  prompt: z.string().min(1).max(4000),
  negativePrompt: z.string().max(2000).optional(),
});

export type PromptStepInput = z.infer<typeof PromptStepInput>;
export type PromptStepResult = z.infer<typeof PromptStepResult>;
