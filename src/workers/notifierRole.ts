import { UnrecoverableError, type Job } from 'bullmq';
import type { Config } from '../config';
import { QueueName } from '../flows/queues';
import { deliver, type DeliveryResult } from '../flows/webhooks/delivery';
import type { NotifyJobData } from '../flows/webhooks/events';
import { UnsafeTarget } from '../flows/webhooks/outboundTarget';
import { logger } from '../logger';
import { connectRedis } from '../redis';
import { WebhookDeliveryModel } from '../store/webhookDeliveryModel';
import { startQueueWorkers } from './queueWorkers';

/**
 * The notifier role: delivers webhooks from the `notify` queue, signed (Standard Webhooks), one
 * record per attempt in MongoDB; a non-2xx answer or a network error is retried by BullMQ with
 * exponential backoff, a target that fails the SSRF check is not retried.
 */
export function startNotifierRole(config: Config, concurrency = 20) {
  const connection = connectRedis(config.REDIS_URL);
  const process = async (job: Job<NotifyJobData>) => {
    const { webhookId, url, type, data, jobId, tenant, createdAt } = job.data;
    if (!config.WEBHOOK_SECRET) throw new UnrecoverableError('WEBHOOK_SECRET is not configured');
    const body = JSON.stringify({ type, timestamp: createdAt, data });
    // Every attempt is recorded, the ones refused before connecting (SSRF check, DNS) included.
    let refused: unknown;
    const result: DeliveryResult = await deliver({ url, id: webhookId, body, secret: config.WEBHOOK_SECRET, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE }).catch((err) => {
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
