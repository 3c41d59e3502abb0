import { pendingErasuresKey } from '../redisKeys';
import type { ErasureDeps, ErasureTarget } from './erasureTarget';

/**
 * Erasures whose resource was still running when its erasure ran out of ERASURE_SETTLE_MS (a GPU
 * step finishing its denoising, a webhook being delivered): a sorted set of `{kind, id, tenant,
 * since}` by when to try again, swept by every orchestrator (pendingErasures.ts) until a pass
 * settles. Ids only.
 */
export const RETRY_EVERY_MS = 2000;

export type PendingErasure = ErasureTarget & { since: number };

export async function addPendingErasure(deps: ErasureDeps, target: ErasureTarget, since: number): Promise<void> {
  const entry: PendingErasure = { kind: target.kind, id: target.id, tenant: target.tenant, since };
  await deps.redis.zadd(pendingErasuresKey(deps.config.QUEUE_PREFIX), Date.now() + RETRY_EVERY_MS, JSON.stringify(entry));
}

/**
 * Claims a due entry for one sweeper: moves its score on only if it is still the score this sweeper
 * read (compare-and-set in Lua, atomic in Redis), so of two orchestrators sweeping at once exactly one
 * gets it; the other sees a changed score and skips. Moving it on (not removing it) keeps it pending
 * if the claimer dies midway: it is due again RETRY_EVERY_MS later.
 */
const CLAIM = `if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) return 1 end return 0`;

export async function claimPendingErasure(deps: ErasureDeps, member: string, score: string, now: number): Promise<boolean> {
  return (await deps.redis.eval(CLAIM, 1, pendingErasuresKey(deps.config.QUEUE_PREFIX), member, score, now + RETRY_EVERY_MS)) === 1;
}
