import { Job, WaitingChildrenError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { BatchModel, type BatchDocument, type BatchItem } from '../../store/batchModel';
import type { ObjectStore } from '../../store/objectStore';
import { isCancelled } from '../cancellation';
import type { BatchJobData } from '../contracts/batch';
import { submitGeneration } from '../generation/submission';
import { derivedId, webhookId } from '../ids';
import { appendJobEvent } from '../jobEvents';
import { type ParentJob, QueueName, type QueueSet } from '../queues';
import { queueWebhook } from '../webhooks/notify';
import { portraitsFromInbox, type SkippedPhoto } from './inboxPhotos';
import { childStatuses, summarize } from './progress';

/**
 * Fan-out/fan-in: the batch job adds every portrait job or generation as its BullMQ child (ids
 * derived from the batch, so a replayed fan-out adds nothing twice), parks in waiting-children,
 * and when the last child has ended (completed or failed alike) writes the batch's summary.
 */
export class BatchOrchestrator {
  constructor(
    private readonly config: Config,
    private readonly connection: Redis,
    private readonly objects: ObjectStore,
    private readonly queues: QueueSet,
  ) {}

  readonly process = async (job: Job<BatchJobData>, token?: string): Promise<{ status: string; total: number }> => {
    const { batchId } = job.data;
    if (!job.data.fannedOut) {
      const { items, skipped } = await this.fanOut(job.data, { id: job.id!, queue: job.queueQualifiedName });
      await BatchModel.updateOne({ _id: batchId }, { $set: { status: 'running', items, skipped } });
      await job.updateData({ ...job.data, fannedOut: true });
      await appendJobEvent(this.connection, this.config.QUEUE_PREFIX, batchId, 'status', { status: 'running', total: items.length });
      logger.info('batch fanned out', { batchId, children: items.length, skipped: skipped.length });
    }
    if (await job.moveToWaitingChildren(token!)) throw new WaitingChildrenError();
    const batch = (await BatchModel.findById(batchId).lean<BatchDocument>())!;
    const summary = summarize(await childStatuses(batch.items), batch.skipped.length, batch.createdAt);
    await BatchModel.updateOne({ _id: batchId }, { $set: { status: 'completed', summary, finishedAt: new Date() } });
    await appendJobEvent(this.connection, this.config.QUEUE_PREFIX, batchId, 'status', { status: 'completed', counts: summary.counts });
    await queueWebhook(this.queues.get(QueueName.notify), this.config, job.data.webhook, {
      type: 'batch.completed',
      id: webhookId(batchId, 'completed'),
      jobId: batchId,
      tenant: job.data.tenant,
      data: { batch_id: batchId, status: 'completed', total: summary.total, counts: summary.counts, skipped: summary.skipped },
    });
    logger.info('batch finished', { batchId, counts: summary.counts });
    return { status: 'completed', total: summary.total };
  };

  private async fanOut(data: BatchJobData, parent: ParentJob): Promise<{ items: BatchItem[]; skipped: SkippedPhoto[] }> {
    const { batchId, tenant, target } = data;
    // A batch cancelled while it fans out stops adding children.
    const cancelled = () => isCancelled(this.connection, this.config.QUEUE_PREFIX, batchId);
    if (target.type === 'portraits_from_prefix') {
      const deps = { config: this.config, objects: this.objects, portraitQueue: this.queues.get(QueueName.portrait) };
      return portraitsFromInbox(deps, { batchId, tenant, prefix: target.prefix, parameters: target.parameters, maxPhotos: target.max_photos, dedupScope: data.dedupScope, parent, cancelled });
    }
    const items: BatchItem[] = [];
    for (const [index, request] of target.requests.entries()) {
      if (await cancelled()) break;
      const id = derivedId(batchId, 'generation', String(index));
      await submitGeneration({ config: this.config, queue: this.queues.get(QueueName.generation) }, { id, tenant, request, parent });
      items.push({ kind: 'generation', id });
    }
    return { items, skipped: [] };
  }
}
