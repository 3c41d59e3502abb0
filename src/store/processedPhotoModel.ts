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

export type TakenPhoto = { scope: string; key: string; etag: string; jobId: string };

/** The inbox photos these portrait jobs were made from (or turned down as), with the ETag each had when taken. */
export async function photosTakenFor(jobIds: string[]): Promise<TakenPhoto[]> {
  if (jobIds.length === 0) return [];
  return ProcessedPhotoModel.find({ jobId: { $in: jobIds } }, { _id: 0, scope: 1, key: 1, etag: 1, jobId: 1 }).lean<TakenPhoto[]>();
}

/** Claims on these keys (a batch's turned-down photos carry no job of their own). */
export async function photosTakenAt(keys: string[]): Promise<TakenPhoto[]> {
  if (keys.length === 0) return [];
  return ProcessedPhotoModel.find({ key: { $in: keys } }, { _id: 0, scope: 1, key: 1, etag: 1, jobId: 1 }).lean<TakenPhoto[]>();
}

/** Forgets the claims held for these job ids (erasure: the claim names the photo and the job). */
export async function forgetPhotosFor(jobIds: string[]): Promise<number> {
  if (jobIds.length === 0) return 0;
  return (await ProcessedPhotoModel.deleteMany({ jobId: { $in: jobIds } })).deletedCount;
}
