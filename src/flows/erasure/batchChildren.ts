import { Job } from 'bullmq';
import type { BatchDocument, BatchItem } from '../../store/batchModel';
import type { BatchJobData, BatchTarget } from '../contracts/batch';
import { INBOX_LIST_LIMIT, inboxRoot } from '../batches/inboxPhotos';
import { batchGenerationId, batchJobId, inboxJobId } from '../ids';
import { QueueName } from '../queues';
import type { ErasureDeps, ResourceKind } from './erasureTarget';
import { MODELS } from './resourceModels';

/** How many inbox objects are looked at for a batch's children (as many as its fan-out lists). */

/** What a batch may have made children from: its target (prompts included: held in memory only), as its document or its BullMQ job says. */
export type BatchSource = { id: string; tenant: string; target?: BatchTarget; items: BatchItem[] };

export async function batchSource(deps: ErasureDeps, id: string, tenant: string, doc?: Pick<BatchDocument, 'target' | 'items'> | null): Promise<BatchSource> {
  if (doc) return { id, tenant, target: doc.target as BatchTarget, items: doc.items ?? [] };
  const job = await Job.fromId<BatchJobData>(deps.queues.get(QueueName.batch), batchJobId(id));
  return { id, tenant, target: job?.data.target, items: [] };
}

/**
 * Every child a batch made or is making, found whatever the fan-out has written so far (its `items`
 * are written only when the fan-out ends): the items listed, the children its BullMQ job waits for
 * or has seen end, and those whose ids derive from its target (orchestrator.ts, inboxPhotos.ts:
 * `batchGenerationId`, `inboxJobId`) and that have a document.
 * Read again on each pass while the batch's job exists, and once after it is gone, so a child added
 * while a pass ran is found too.
 */
export async function findBatchChildren(deps: ErasureDeps, source: BatchSource): Promise<{ kind: ResourceKind; id: string }[]> {
  const found = new Map<string, ResourceKind>();
  for (const item of source.items) found.set(item.id, item.kind === 'portrait' ? 'job' : 'generation');
  for (const [id, kind] of await dependenciesOf(deps, source.id)) found.set(id, kind);
  const derived = new Map<string, ResourceKind>();
  if (source.target?.type === 'generations') {
    for (const index of source.target.requests.keys()) derived.set(batchGenerationId(source.id, index), 'generation');
  } else if (source.target?.type === 'portraits_from_prefix') {
    for (const o of await deps.objects.list(inboxRoot(deps.config, source.tenant, source.target.prefix), INBOX_LIST_LIMIT)) derived.set(inboxJobId(source.id, o.key, o.etag), 'job');
  }
  for (const kind of ['job', 'generation'] as const) {
    const ids = [...derived].filter(([id, k]) => k === kind && !found.has(id)).map(([id]) => id);
    if (ids.length === 0) continue;
    for (const doc of await MODELS[kind].find({ _id: { $in: ids } }, { _id: 1 }).lean<{ _id: unknown }[]>()) found.set(String(doc._id), kind);
  }
  return [...found].map(([id, kind]) => ({ kind, id }));
}

/** The children the batch's BullMQ job records (`<prefix>:<queue>:<jobId>` keys), by resource id. */
async function dependenciesOf(deps: ErasureDeps, batchId: string): Promise<Map<string, ResourceKind>> {
  const children = new Map<string, ResourceKind>();
  const job = await Job.fromId(deps.queues.get(QueueName.batch), batchJobId(batchId));
  if (!job) return children;
  const { processed = {}, unprocessed = [], failed = [], ignored = {} } = await job.getDependencies();
  const unsuccessful = await deps.redis.zrange(`${deps.config.QUEUE_PREFIX}:${QueueName.batch}:${batchJobId(batchId)}:unsuccessful`, '0', '-1');
  for (const key of [...Object.keys(processed), ...unprocessed, ...failed, ...Object.keys(ignored), ...unsuccessful]) {
    const [queue, jobId] = key.split(':').slice(-2);
    const id = /[0-9a-f]{24}/.exec(jobId ?? '')?.[0];
    if (id && (queue === QueueName.portrait || queue === QueueName.generation)) children.set(id, queue === QueueName.portrait ? 'job' : 'generation');
  }
  return children;
}
