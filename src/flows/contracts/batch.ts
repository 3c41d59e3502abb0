import { z } from 'zod';
import type { WebhookSpec } from '../webhooks/events';
import type { TraceCarrier } from './common';
import { GenerationRequest, upscaledSizeFits } from './generation';
import { PortraitParameters } from './portraitParameters';

/** One generation of a batch: a plain generation request without per-request secrets or webhook (the batch has one outcome). */
export const BatchGenerationItem = GenerationRequest.omit({ secrets: true, webhook: true, destination: true }).superRefine(upscaledSizeFits);

/** A folder under the tenant's inbox (`<S3_INBOX_PREFIX><tenant>/`) in the deployment's bucket. */
export const InboxPrefix = z
  .string()
  .max(512)
  .regex(/^([A-Za-z0-9!_.*'()-]+\/)*$/, 'must be empty or folder names ending in "/", like "2026/march/" (no leading "/")')
  .refine((p) => !p.split('/').some((folder) => folder === '.' || folder === '..'), 'must not contain "." or ".." folders; name the folder, like "march/"');

/** What a batch runs: a list of generations, or every photo under an inbox prefix as a portrait. */
export const BatchTarget = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('generations'), requests: z.array(BatchGenerationItem).min(1).max(100) }),
  z.strictObject({
    type: z.literal('portraits_from_prefix'),
    prefix: InboxPrefix.default(''),
    parameters: PortraitParameters.default(PortraitParameters.parse({})),
    /** At most this many new photos per run; the rest wait for the next run. */
    max_photos: z.number().int().min(1).max(500).default(100),
  }),
]);
export type BatchTarget = z.infer<typeof BatchTarget>;

/** Signed notifications (event: batch.completed, with the counts) — checked like a generation's. */
export const BatchWebhook = GenerationRequest.shape.webhook;

export const BatchRequest = z.strictObject({ target: BatchTarget, webhook: BatchWebhook });

/** The orchestrator job of a batch: which photos it may take is scoped by `dedupScope`. */
export type BatchJobData = {
  batchId: string;
  tenant: string;
  target: BatchTarget;
  dedupScope: string;
  webhook?: WebhookSpec;
  fannedOut?: boolean;
  trace?: TraceCarrier;
};
