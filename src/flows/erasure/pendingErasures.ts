import { logger } from '../../logger';
import { pendingErasuresKey } from '../redisKeys';
import { batchSource } from './batchChildren';
import type { ErasureDeps, ErasureTarget } from './erasureTarget';
import { addPendingErasure, claimPendingErasure, RETRY_EVERY_MS, type PendingErasure } from './pendingErasureSet';
import { eraseRound } from './resourceErasure';

/** The sweeper of the pending erasures (pendingErasureSet.ts): every orchestrator runs one. */

/** Tries every pending erasure that is due; returns how many are still pending. `pass`: one erasure round (a test may slow or count it). */
export async function retryPendingErasures(deps: ErasureDeps, now = Date.now(), pass = pendingRound): Promise<number> {
  const key = pendingErasuresKey(deps.config.QUEUE_PREFIX);
  const due = await deps.redis.zrangebyscore(key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 100);
  for (let i = 0; i < due.length; i += 2) {
    const [member, score] = [due[i], due[i + 1]];
    if (!(await claimPendingErasure(deps, member, score, now))) continue;
    const { since, ...target } = JSON.parse(member) as PendingErasure;
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
