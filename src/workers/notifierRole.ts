import { DelayedError, UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../config';
import { QueueName } from '../flows/queues';
import { deliver, type DeliveryResult } from '../flows/webhooks/delivery';
import type { NotifyJobData } from '../flows/webhooks/events';
import { UnsafeTarget } from '../flows/webhooks/outboundTarget';
import { logger } from '../logger';
import { connectRedis } from '../redis';
import { WebhookDeliveryModel } from '../store/webhookDeliveryModel';
import { startQueueWorkers } from './queueWorkers';
import { TenantSlots } from './tenantSlots';

/** How long a delivery whose tenant holds all its slots waits before it is tried again (it does not count as an attempt). */
const SLOT_RETRY_MS = 500;

/**
 * The notifier role: delivers webhooks from the `notify` queue, signed (Standard Webhooks), one
 * record per attempt in MongoDB; a non-2xx answer or a network error is retried by BullMQ with
 * exponential backoff, a target that fails the SSRF check is not retried. Each attempt has a whole
 * deadline (WEBHOOK_ATTEMPT_DEADLINE_MS), and a tenant runs at most WEBHOOK_CONCURRENCY_PER_TENANT
 * deliveries at once in this process: one more is delayed a moment, leaving the place to other
 * tenants' deliveries, so one tenant's slow receivers never delay another's.
 */
export function startNotifierRole(config: Config, concurrency = 20) {
  const connection = connectRedis(config.REDIS_URL);
  const slots = new TenantSlots(config.WEBHOOK_CONCURRENCY_PER_TENANT);
  const process = async (job: Job<NotifyJobData>, token?: string) => {
    const release = slots.tryTake(job.data.tenant);
    if (!release) {
      await job.moveToDelayed(Date.now() + SLOT_RETRY_MS + Math.floor(Math.random() * SLOT_RETRY_MS), token);
      throw new DelayedError();
    }
    try {
      return await deliverOnce(job);
    } finally {
      release();
    }
  };
  const deliverOnce = async (job: Job<NotifyJobData>) => {
    const { webhookId, url, type, data, jobId, tenant, createdAt } = job.data;
    if (!config.WEBHOOK_SECRET) throw new UnrecoverableError('WEBHOOK_SECRET is not configured');
    const body = JSON.stringify({ type, timestamp: createdAt, data });
    // Every attempt is recorded, the ones refused before connecting (SSRF check, DNS) included.
    let refused: unknown;
    const deadlineMs = config.WEBHOOK_ATTEMPT_DEADLINE_MS;
    const result: DeliveryResult = await deliver({ url, id: webhookId, body, secret: config.WEBHOOK_SECRET, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE, deadlineMs }).catch((err) => {
      refused = err;
      return { status: null, error: err instanceof Error ? err.message : String(err), durationMs: 0 };
    });
    await WebhookDeliveryModel.create({ jobId, tenant, webhookId, type, url, attempt: job.attemptsMade + 1, ...result });
    if (refused) throw refused instanceof UnsafeTarget ? new UnrecoverableError(refused.message) : refused;
    if (result.status === null || result.status < 200 || result.status >= 300) {
      throw new Error(`webhook answered ${result.status ?? result.error}`);
    }
    logger.info('webhook delivered', { webhookId, type, status: result.status });
    return { status: result.status };
  };
  const workers = startQueueWorkers([{ queue: QueueName.notify, processor: process }], { connection, prefix: config.QUEUE_PREFIX, concurrency });
  return {
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      connection.disconnect();
    },
  };
}
