import type { Request } from 'express';
import { ApiError } from './errors';

/** The request's `Idempotency-Key` header, checked; undefined when absent. */
export function idempotencyKeyOf(req: Request): string | undefined {
  const key = req.get('idempotency-key');
  if (key === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new ApiError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1-255 visible ASCII characters', 'idempotency-key');
  }
  return key;
}
