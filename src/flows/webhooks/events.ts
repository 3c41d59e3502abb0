import { z } from 'zod';

/** What a webhook can be told: a job's terminal states and (opt-in) every step, a generation's end, a batch's end, an identity's end. */
export const WEBHOOK_EVENTS = [
  'job.completed', 'job.failed_validation', 'job.failed', 'job.cancelled', 'job.step',
  'generation.completed', 'generation.failed', 'generation.cancelled',
  'batch.completed',
  'identity.ready', 'identity.failed', 'identity.cancelled',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
export const DEFAULT_WEBHOOK_EVENTS: WebhookEvent[] = ['job.completed', 'job.failed_validation', 'job.failed', 'job.cancelled'];
export const DEFAULT_GENERATION_EVENTS: WebhookEvent[] = ['generation.completed', 'generation.failed', 'generation.cancelled'];
export const DEFAULT_BATCH_EVENTS: WebhookEvent[] = ['batch.completed'];
export const DEFAULT_IDENTITY_EVENTS: WebhookEvent[] = ['identity.ready', 'identity.failed', 'identity.cancelled'];

export const WebhookSpec = z.object({
  url: z.url({ protocol: /^https?$/ }).max(2048),
  events: z.array(z.enum(WEBHOOK_EVENTS)).min(1).max(WEBHOOK_EVENTS.length),
});
export type WebhookSpec = z.infer<typeof WebhookSpec>;

/** Queue `notify`: one delivery, retried with backoff by BullMQ; its id is the webhook-id. */
export const NotifyJobData = z.object({
  webhookId: z.string(),
  jobId: z.string(),
  tenant: z.string(),
  url: z.string(),
  type: z.enum(WEBHOOK_EVENTS),
  data: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
});
export type NotifyJobData = z.infer<typeof NotifyJobData>;
