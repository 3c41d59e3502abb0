import { Job } from 'bullmq';
import { BatchModel, type BatchDocument, type BatchItem } from '../../store/batchModel';
import { GenerationModel } from '../../store/generationModel';
import { IdentityModel } from '../../store/identityModel';
import { forgetIdempotencyKeysOf } from '../../store/idempotencyModel';
import { JobModel } from '../../store/jobModel';
import type { ObjectStore } from '../../store/objectStore';
import { forgetPhotosFor, photosTakenAt, photosTakenFor, type TakenPhoto } from '../../store/processedPhotoModel';
import { ScheduleModel } from '../../store/scheduleModel';
import { WebhookDeliveryModel } from '../../store/webhookDeliveryModel';
import type { BatchJobData, BatchTarget } from '../contracts/batch';
import { batchGenerationId, batchJobId, generationObjectsPrefix, identityObjectsPrefix, inboxJobId, jobObjectsPrefix, scheduleBatchId } from '../ids';
import { QueueName, type QueueSet } from '../queues';
import type { ResourceKind } from './erasureTarget';

/**
 * What MongoDB and S3 hold of one resource, erased: its document, its webhook deliveries, the
 * Idempotency-Keys that created it (usable again after), its objects, the inbox photos it was made
 * from and their claims, and in a batch that made it, its item and its request (forgetChildOfBatches). Idempotent: a second pass finds
 * nothing and deletes nothing.
 */
export async function eraseDocumentsAndObjects(deps: { objects: ObjectStore; queues: QueueSet }, kind: ResourceKind, id: string): Promise<void> {
  if (kind === 'batch') {
    const batch = await BatchModel.findById(id).lean<BatchDocument>();
    if (batch) await forgetBatchTraces(deps, batch);
    await BatchModel.deleteOne({ _id: id });
  } else if (kind === 'identity') {
    // Everything learnt from the person is under its prefix; portraits made of it stay with their jobs.
    await IdentityModel.deleteOne({ _id: id });
    await deps.objects.deletePrefix(identityObjectsPrefix(id));
  } else {
    await eraseTakenPhotos(deps.objects, await photosTakenFor([id]));
    await (kind === 'job' ? JobModel : GenerationModel).deleteOne({ _id: id });
    await deps.objects.deletePrefix(kind === 'job' ? jobObjectsPrefix(id) : generationObjectsPrefix(id));
    await forgetChildOfBatches(deps.queues, id);
  }
  await WebhookDeliveryModel.deleteMany({ jobId: id });
  await forgetIdempotencyKeysOf(id);
}

/**
 * The inbox photos taken for these jobs, deleted while they still hold the bytes that were taken
 * (same ETag: a photo replaced since is a new one and stays), then their claims. Left in the
 * inbox, a schedule would take the photo again and re-create what was erased.
 */
export async function eraseTakenPhotos(objects: ObjectStore, photos: TakenPhoto[], { keepClaims = false } = {}): Promise<void> {
  const unchanged: string[] = [];
  for (const photo of photos) if ((await objects.etag(photo.key)) === photo.etag) unchanged.push(photo.key);
  await objects.deleteKeys(unchanged);
  if (!keepClaims) await forgetPhotosFor(photos.map((p) => p.jobId));
}

/** A batch's own traces beside its children: the photos it turned down, the schedule's pointer to it, the firing that started it. */
async function forgetBatchTraces(deps: { objects: ObjectStore; queues: QueueSet }, batch: BatchDocument): Promise<void> {
  const id = batch._id.toHexString();
  const skipped = (batch.skipped as { key: string }[]).map((s) => s.key);
  const turnedDown = (await photosTakenAt(skipped)).filter((p) => p.jobId === inboxJobId(id, p.key, p.etag));
  await eraseTakenPhotos(deps.objects, turnedDown);
  if (!batch.scheduleId) return;
  await ScheduleModel.updateMany({ _id: batch.scheduleId, lastBatchId: id }, { $unset: { lastBatchId: 1 } });
  // The firing that started the batch (its id gives the batch's: scheduleBatchId) is removed with it.
  const scheduleQueue = deps.queues.get(QueueName.schedule);
  for (const firing of await scheduleQueue.getJobs(['completed', 'failed'], 0, 1000)) {
    if (firing?.id && scheduleBatchId(firing.id) === id) await firing.remove().catch(() => undefined);
  }
}

/** What a batch's generation request says once its generation was erased: its text (the prompts) is gone, its shape stays. */
const ERASED_PROMPT = '[erased]';

/**
 * A child erased on its own leaves its batch, which goes on without it: its item and its line in
 * the summary are pulled (`$pull`, not a rewrite of the array: the fan-out may be writing it), and
 * the request it was made from, in the document and in the batch's BullMQ job data, loses its
 * prompts (a person's words). Its position stays, so the other children's ids still derive from theirs.
 */
async function forgetChildOfBatches(queues: QueueSet, id: string): Promise<void> {
  for (const batch of await BatchModel.find({ 'items.id': id }).lean<BatchDocument[]>()) {
    const batchId = batch._id.toHexString();
    // The elements as stored: FerretDB's $pull removes equal values only, it takes no query.
    const item = batch.items.find((i: BatchItem) => i.id === id);
    const unsuccessful = (batch.summary as { unsuccessful?: { id: string }[] } | undefined)?.unsuccessful?.find((c) => c.id === id);
    const request = requestIndexOf(batchId, batch.target as BatchTarget, id);
    const at = `target.requests.${request}`;
    await BatchModel.updateOne(
      { _id: batch._id },
      {
        $pull: { items: item, ...(unsuccessful ? { 'summary.unsuccessful': unsuccessful } : {}) },
        ...(request >= 0 ? { $set: { [`${at}.prompt`]: ERASED_PROMPT }, $unset: { [`${at}.negative_prompt`]: 1 } } : {}),
      },
    );
    if (request >= 0) await forgetRequestInBatchJob(queues, batchId, request);
  }
}

/** The index of the generation request that made this child (ids derive from it: orchestrator.ts), or -1. */
function requestIndexOf(batchId: string, target: BatchTarget, childId: string): number {
  if (target?.type !== 'generations') return -1;
  return target.requests.findIndex((_, index) => batchGenerationId(batchId, index) === childId);
}

async function forgetRequestInBatchJob(queues: QueueSet, batchId: string, index: number): Promise<void> {
  const job = await Job.fromId<BatchJobData>(queues.get(QueueName.batch), batchJobId(batchId));
  if (job?.data.target.type !== 'generations') return;
  const requests = job.data.target.requests.map((r, i) => (i === index ? { ...r, prompt: ERASED_PROMPT, negative_prompt: undefined } : r));
  await job.updateData({ ...job.data, target: { ...job.data.target, requests } });
}
