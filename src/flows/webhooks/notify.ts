import { Job, type IRedisTransaction, type Queue } from 'bullmq';
import type { Config } from '../../config';
import type { NotifyJobData, WebhookEvent, WebhookSpec } from './events';

/**
 * Queues one webhook delivery when the resource asked for this event. Its id (ids.ts webhookId)
 * derives from the transition, so a replayed transition does not notify twice. Given a
 * transaction (a workflow's hand-off), the delivery is added on it, with the transition it tells of.
 */
export async function queueWebhook(
  queue: Queue<NotifyJobData>,
  config: Config,
  webhook: WebhookSpec | undefined,
  event: { type: WebhookEvent; id: string; jobId: string; tenant: string; data: Record<string, unknown> },
  tx?: IRedisTransaction,
): Promise<void> {
  if (!webhook?.events.includes(event.type)) return;
  const webhookId = event.id;
  const retention = { age: config.STEP_RETENTION_S };
  const data = { webhookId, jobId: event.jobId, tenant: event.tenant, url: webhook.url, type: event.type, data: event.data, createdAt: new Date().toISOString() };
  const opts = { jobId: webhookId, attempts: config.WEBHOOK_ATTEMPTS, backoff: { type: 'exponential', delay: config.WEBHOOK_BACKOFF_MS }, removeOnComplete: retention, removeOnFail: retention };
  if (tx) await new Job(queue, event.type, data, opts, webhookId).addJob(tx);
  else await queue.add(event.type, data, opts);
}
