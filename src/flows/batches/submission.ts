import type { Queue } from 'bullmq';
import type { Config } from '../../config';
import { BatchModel } from '../../store/batchModel';
import { isDuplicateKey } from '../../store/mongo';
import { currentTraceCarrier } from '../../telemetry';
import type { BatchJobData, BatchTarget } from '../contracts/batch';
import { batchJobId } from '../ids';
import { orchestratorJobOptions } from '../queues';
import type { WebhookSpec } from '../webhooks/events';

/** Which photos count as taken for a schedule: all those any of its batches took. */
export const scheduleScope = (scheduleId: string) => `schedule:${scheduleId}`;

/**
 * A batch (from POST /batches or a schedule's firing): its document, then its orchestrator job.
 * Both are keyed by the batch id, so submitting the same batch twice creates it once.
 */
export async function submitBatch(
  deps: { config: Config; batchQueue: Queue<BatchJobData> },
  batch: { id: string; tenant: string; target: BatchTarget; scheduleId?: string; webhook?: WebhookSpec },
): Promise<void> {
  const { id, tenant, target, scheduleId, webhook } = batch;
  await BatchModel.create({ _id: id, tenant, status: 'pending', target, scheduleId }).catch((err) => {
    if (!isDuplicateKey(err)) throw err;
  });
  // A schedule's photos are taken once across all its runs; a one-off batch takes what it finds.
  const dedupScope = scheduleId ? scheduleScope(scheduleId) : `batch:${id}`;
  await deps.batchQueue.add('batch', { batchId: id, tenant, target, dedupScope, webhook, trace: currentTraceCarrier() }, orchestratorJobOptions(batchJobId(id), deps.config.STEP_RETENTION_S));
}
