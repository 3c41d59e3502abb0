import type { Request } from 'express';
import { claimIdempotencyKey, releaseIdempotencyKey } from '../store/idempotencyModel';
import { ApiError } from './errors';

/** The request's `Idempotency-Key` header, checked; undefined when absent. */
function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new ApiError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1-255 visible ASCII characters', 'idempotency-key');
  }
  return key;
}

/**
 * Applies the request's Idempotency-Key, if any, to a request that would create `resourceId`.
 * `replayOf` is the resource an identical earlier request created; a key reused with a different
 * request is a 422; `release` frees the key when the creation then fails, so a retry can use it.
 */
export async function claimRequest(
  req: Request,
  tenant: string,
  fingerprint: () => string,
  resourceId: string,
): Promise<{ replayOf?: string; release: () => Promise<void> }> {
  const key = idempotencyKeyOf(req);
  if (!key) return { release: async () => undefined };
  const route = `${req.method} ${req.path}`;
  const claim = await claimIdempotencyKey(tenant, route, key, fingerprint(), resourceId);
  if (claim.kind === 'conflict') {
    throw new ApiError(422, 'idempotency_key_reused', 'this Idempotency-Key was used with a different request', 'idempotency-key');
  }
  return { replayOf: claim.kind === 'replay' ? claim.resourceId : undefined, release: () => releaseIdempotencyKey(tenant, route, key) };
}
