import { logger } from '../../logger';
import { pendingErasuresKey } from '../redisKeys';
import { batchSource } from './batchChildren';
import { eraseRound } from './resourceErasure';
import type { ErasureDeps, ErasureTarget } from './erasureTarget';

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

/**
 * Claims a due entry for one sweeper: moves its score on only if it is still the score this sweeper
 * read (compare-and-set in Lua, atomic in Redis), so of two orchestrators sweeping at once exactly one
 * gets it; the other sees a changed score and skips. Moving it on (not removing it) keeps it pending
 * if the claimer dies midway: it is due again RETRY_EVERY_MS later.
 */
const CLAIM = `if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) return 1 end return 0`;

/** Tries every pending erasure that is due; returns how many are still pending. `pass`: one erasure round (a test may slow or count it). */
export async function retryPendingErasures(deps: ErasureDeps, now = Date.now(), pass = pendingRound): Promise<number> {
  const key = pendingErasuresKey(deps.config.QUEUE_PREFIX);
  const due = await deps.redis.zrangebyscore(key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 100);
  for (let i = 0; i < due.length; i += 2) {
    const [member, score] = [due[i], due[i + 1]];
    if ((await deps.redis.eval(CLAIM, 1, key, member, score, now + RETRY_EVERY_MS)) !== 1) continue;
    const { since, ...target } = JSON.parse(member) as Pending;
    try {
      if (await pass(deps, target, since)) await deps.redis.zrem(key, member);
    } catch (err) {
      logger.warn('pending erasure failed; trying again', { kind: target.kind, id: target.id, error: String(err) });
    }
  }
  return deps.redis.zcard(key);
}

/** One round over a pending erasure; children a batch made meanwhile become pending erasures of their own. True once it no longer runs. */
async function pendingRound(deps: ErasureDeps, target: ErasureTarget, since: number): Promise<boolean> {
  const entry = { target, since, ...(target.kind === 'batch' ? { batch: await batchSource(deps, target.id, target.tenant) } : {}) };
  const round = await eraseRound(deps, [entry], new Set([target.id]));
  for (const other of round.open) if (other !== entry) await addPendingErasure(deps, other.target, other.since);
  return !round.open.includes(entry);
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
