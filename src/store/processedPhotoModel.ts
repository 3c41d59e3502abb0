import mongoose, { Schema } from 'mongoose';
import { createHash } from 'node:crypto';
import { isDuplicateKey } from './mongo';

/**
 * Inbox photos already taken, keyed by (scope, object key, ETag): a schedule firing again, or a
 * replayed fan-out, finds the claim and does not make a second portrait of the same bytes. A photo
 * replaced under the same key has a new ETag and is taken again.
 */
const processedPhotoSchema = new Schema(
  {
    _id: { type: String, required: true },
    scope: { type: String, required: true },
    key: { type: String, required: true },
    etag: { type: String, required: true },
    /** The portrait job made from it (or that would have been, when the photo was turned down). */
    jobId: { type: String, required: true },
  },
  { timestamps: true, versionKey: false },
);

const ProcessedPhotoModel = mongoose.models.ProcessedPhoto ?? mongoose.model('ProcessedPhoto', processedPhotoSchema);

/**
 * Claims the photo for `jobId`. True when this job owns it (first claim, or a replay of the same
 * job); false when another job already took these bytes.
 */
export async function claimPhoto(scope: string, key: string, etag: string, jobId: string): Promise<boolean> {
  const _id = createHash('sha256').update(`${scope}\0${key}\0${etag}`).digest('hex');
  try {
    await ProcessedPhotoModel.create({ _id, scope, key, etag, jobId });
    return true;
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
  }
  const existing = await ProcessedPhotoModel.findById(_id).lean<{ jobId: string }>();
  return existing?.jobId === jobId;
}

/** Forgets every photo a scope took (a deleted schedule's): its claims would otherwise stay forever. */
export async function forgetPhotos(scope: string): Promise<number> {
  return (await ProcessedPhotoModel.deleteMany({ scope })).deletedCount;
}
