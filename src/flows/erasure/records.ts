import { BatchModel, type BatchDocument, type BatchItem } from '../../store/batchModel';
import { GenerationModel } from '../../store/generationModel';
import { forgetIdempotencyKeysOf } from '../../store/idempotencyModel';
import { JobModel } from '../../store/jobModel';
import type { ObjectStore } from '../../store/objectStore';
import { forgetPhotosFor, photosTakenAt, photosTakenFor, type TakenPhoto } from '../../store/processedPhotoModel';
import { ScheduleModel } from '../../store/scheduleModel';
import { WebhookDeliveryModel } from '../../store/webhookDeliveryModel';
import { derivedId, generationObjectsPrefix, jobObjectsPrefix } from '../ids';
import { QueueName, type QueueSet } from '../queues';
import type { ResourceKind } from './targets';

/**
 * What MongoDB and S3 hold of one resource, erased: its document, its webhook deliveries, the
 * Idempotency-Keys that created it (usable again after), its objects, the inbox photos it was made
 * from and their claims, and its id in a batch that listed it. Idempotent: a second pass finds
 * nothing and deletes nothing.
 */
export async function eraseRecords(deps: { objects: ObjectStore; queues: QueueSet }, kind: ResourceKind, id: string): Promise<void> {
  if (kind === 'batch') {
    const batch = await BatchModel.findById(id).lean<BatchDocument>();
    if (batch) await forgetBatchTraces(deps, batch);
    await BatchModel.deleteOne({ _id: id });
  } else {
    await eraseTakenPhotos(deps.objects, await photosTakenFor([id]));
    await (kind === 'job' ? JobModel : GenerationModel).deleteOne({ _id: id });
    await deps.objects.deletePrefix(kind === 'job' ? jobObjectsPrefix(id) : generationObjectsPrefix(id));
    await forgetChildOfBatches(id);
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
  const turnedDown = (await photosTakenAt(skipped)).filter((p) => p.jobId === derivedId(id, p.key, p.etag));
  await eraseTakenPhotos(deps.objects, turnedDown);
  if (!batch.scheduleId) return;
  await ScheduleModel.updateMany({ _id: batch.scheduleId, lastBatchId: id }, { $unset: { lastBatchId: 1 } });
  // The firing's return value names the batch (schedules.ts derives the batch id from the firing's id).
  const scheduleQueue = deps.queues.get(QueueName.schedule);
  for (const firing of await scheduleQueue.getJobs(['completed', 'failed'], 0, 1000)) {
    if (firing?.id && derivedId('schedule-firing', firing.id) === id) await firing.remove().catch(() => undefined);
  }
}

/** A child erased on its own leaves its batch: the batch's counts go on without it. */
async function forgetChildOfBatches(id: string): Promise<void> {
  for (const batch of await BatchModel.find({ 'items.id': id }).lean<BatchDocument[]>()) {
    const summary = batch.summary as { unsuccessful?: { id: string }[] } | undefined;
    await BatchModel.updateOne(
      { _id: batch._id },
      {
        $set: {
          items: batch.items.filter((i: BatchItem) => i.id !== id),
          ...(summary?.unsuccessful ? { 'summary.unsuccessful': summary.unsuccessful.filter((c) => c.id !== id) } : {}),
        },
      },
    );
  }
}
