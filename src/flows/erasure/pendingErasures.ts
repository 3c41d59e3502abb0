import { logger } from '../../logger';
import { pendingErasuresKey } from '../redisKeys';
import { erasePass } from './erasurePass';
import type { ErasureDeps, ErasureTarget } from './targets';

/**
 * Erasures whose resource was still running when its erasure ran out of ERASURE_SETTLE_MS (a GPU
 * step finishing its denoising, a webhook being delivered): a sorted set of `{kind, id, tenant,
 * since}` by when to try again, swept by every orchestrator until a pass settles. Ids only.
 */
const RETRY_EVERY_MS = 2000;

type Pending = ErasureTarget & { since: number };

export async function addPendingErasure(deps: ErasureDeps, target: ErasureTarget, since: number): Promise<void> {
  const entry: Pending = { kind: target.kind, id: target.id, tenant: target.tenant, since };
  await deps.redis.zadd(pendingErasuresKey(deps.config.QUEUE_PREFIX), Date.now() + RETRY_EVERY_MS, JSON.stringify(entry));
}

/** Tries every pending erasure that is due; returns how many are still pending. */
export async function retryPendingErasures(deps: ErasureDeps, now = Date.now()): Promise<number> {
  const key = pendingErasuresKey(deps.config.QUEUE_PREFIX);
  for (const member of await deps.redis.zrangebyscore(key, '-inf', now, 'LIMIT', 0, 100)) {
    // Claimed by moving it on: another orchestrator sweeping now skips it.
    if ((await deps.redis.zadd(key, 'XX', 'CH', 'GT', now + RETRY_EVERY_MS, member)) !== 1) continue;
    const { since, ...target } = JSON.parse(member) as Pending;
    try {
      if ((await erasePass(deps, target, since)).settled) await deps.redis.zrem(key, member);
    } catch (err) {
      logger.warn('pending erasure failed; trying again', { kind: target.kind, id: target.id, error: String(err) });
    }
  }
  return deps.redis.zcard(key);
}

/** Sweeps the pending erasures every RETRY_EVERY_MS. Close it with the process. */
export function startPendingErasureSweeper(deps: ErasureDeps): { close(): Promise<void> } {
  let sweeping: Promise<unknown> = Promise.resolve();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    sweeping = retryPendingErasures(deps)
      .catch((err) => logger.warn('pending erasure sweep failed', { error: String(err) }))
      .finally(() => (busy = false));
  }, RETRY_EVERY_MS);
  return {
    async close() {
      clearInterval(timer);
      await sweeping;
    },
  };
}
