import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { BatchModel, type BatchDocument, type BatchItem } from '../../store/batchModel';
import type { ObjectStore } from '../../store/objectStore';
import { isCancelled } from '../cancellation';
import type { BatchJobData } from '../contracts/batch';
import { submitGeneration } from '../generation/submission';
import { batchGenerationId, webhookId } from '../ids';
import { addJobEvent } from '../jobEvents';
import { type ParentJob, QueueName, type QueueSet } from '../queues';
import { StepRunner } from '../steps/stepRunner';
import { asBullMQTransaction } from '../steps/workflowTransaction';
import { queueWebhook } from '../webhooks/notify';
import type { WorkflowMetrics } from '../workflowMetrics';
import { portraitsFromInbox, type SkippedPhoto } from './inboxPhotos';
import { childStatuses, summarize } from './progress';

/**
 * Fan-out/fan-in: the batch job adds every portrait job or generation as its BullMQ child (ids
 * derived from the batch, so a replayed fan-out adds nothing twice), parks in waiting-children,
 * and when the last child has ended (completed or failed alike) writes the batch's summary. It
 * parks and announces through the step runner, as the other workflows do: the saved state, the
 * event and the parking in one transaction; the final event and webhook in another.
 */
export class BatchOrchestrator {
  private readonly runner: StepRunner;

  constructor(
    private readonly config: Config,
    private readonly connection: Redis,
    private readonly objects: ObjectStore,
    private readonly queues: QueueSet,
    metrics: WorkflowMetrics,
  ) {
    this.runner = new StepRunner(config, connection, metrics);
  }

  readonly process = async (job: Job<BatchJobData>, token?: string): Promise<{ status: string; total: number }> => {
    const { batchId } = job.data;
    const batchQueue = this.queues.get(QueueName.batch);
    if (!job.data.fannedOut) {
      const { items, skipped } = await this.fanOut(job.data, { id: job.id!, queue: job.queueQualifiedName });
      await BatchModel.updateOne({ _id: batchId }, { $set: { status: 'running', items, skipped } });
      logger.info('batch fanned out', { batchId, children: items.length, skipped: skipped.length });
      const tx = await this.runner.begin(batchQueue);
      addJobEvent(tx, this.config.QUEUE_PREFIX, batchId, 'status', { status: 'running', total: items.length });
      await this.runner.saveAndPark(tx, { queue: batchQueue, job, token: token!, data: { ...job.data, fannedOut: true } });
    } else {
      await this.runner.park(job, token!);
    }
    const batch = (await BatchModel.findById(batchId).lean<BatchDocument>())!;
    const summary = summarize(await childStatuses(batch.items), batch.skipped.length, batch.createdAt);
    await BatchModel.updateOne({ _id: batchId }, { $set: { status: 'completed', summary, finishedAt: new Date() } });
    const tx = await this.runner.begin(batchQueue);
    addJobEvent(tx, this.config.QUEUE_PREFIX, batchId, 'status', { status: 'completed', counts: summary.counts });
    const event = { batch_id: batchId, status: 'completed', total: summary.total, counts: summary.counts, skipped: summary.skipped };
    const webhook = { type: 'batch.completed' as const, id: webhookId(batchId, 'completed'), jobId: batchId, tenant: job.data.tenant, data: event };
    await queueWebhook(this.queues.get(QueueName.notify), this.config, job.data.webhook, webhook, asBullMQTransaction(tx));
    await this.runner.commit(tx);
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
      const id = batchGenerationId(batchId, index);
      await submitGeneration({ config: this.config, queue: this.queues.get(QueueName.generation) }, { id, tenant, request, parent });
      items.push({ kind: 'generation', id });
    }
    return { items, skipped: [] };
  }
}
