import mongoose, { Schema } from 'mongoose';
import { createHash } from 'node:crypto';
import { isDuplicateKey } from './mongo';

/**
 * Idempotency-Key records: per tenant and key, the hash of the request it first came with and the
 * resource it created. Keyed by _id (one lookup, the only filter FerretDB pushes down).
 */
const idempotencySchema = new Schema(
  {
    _id: { type: String, required: true },
    requestHash: { type: String, required: true },
    resourceId: { type: String, required: true },
  },
  { timestamps: true, versionKey: false },
);

const IdempotencyModel = mongoose.models.Idempotency ?? mongoose.model('Idempotency', idempotencySchema);

export type Claim = { kind: 'new' } | { kind: 'replay'; resourceId: string } | { kind: 'conflict' };

const recordId = (tenant: string, route: string, key: string) => createHash('sha256').update(`${tenant}\0${route}\0${key}`).digest('hex');

/**
 * Claims `key` for a request that will create `resourceId`. The first claim wins (a unique _id, so
 * two concurrent requests cannot both create); later ones replay its resource when the request is
 * the same, or conflict when it differs.
 */
export async function claimIdempotencyKey(tenant: string, route: string, key: string, requestHash: string, resourceId: string): Promise<Claim> {
  const _id = recordId(tenant, route, key);
  try {
    await IdempotencyModel.create({ _id, requestHash, resourceId });
    return { kind: 'new' };
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
  }
  const existing = await IdempotencyModel.findById(_id).lean<{ requestHash: string; resourceId: string }>();
  if (!existing) return claimIdempotencyKey(tenant, route, key, requestHash, resourceId);
  return existing.requestHash === requestHash ? { kind: 'replay', resourceId: existing.resourceId } : { kind: 'conflict' };
}

/** Frees a key whose request failed before it created anything, so a retry can use it. */
export async function releaseIdempotencyKey(tenant: string, route: string, key: string): Promise<void> {
  await IdempotencyModel.deleteOne({ _id: recordId(tenant, route, key) });
}

/** Forgets every Idempotency-Key that created this resource (erasure), so the key can create a new one. */
export async function forgetIdempotencyKeysOf(resourceId: string): Promise<number> {
  return (await IdempotencyModel.deleteMany({ resourceId })).deletedCount;
}
