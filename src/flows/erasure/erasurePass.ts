import { eraseRecords } from './records';
import { eraseRedisTraces } from './redisTraces';
import type { ErasureDeps, ErasureTarget } from './targets';

/**
 * One pass over everything a resource left: its records and objects, then Redis. `settled` when
 * nothing of it was still running, so nothing can write any more; the records are then erased once
 * more, for what a job wrote while the first sweep ran (a step's upload, a webhook's delivery record).
 * `since`: the resource's creation time (ms), where its entries in the queues' event streams begin.
 */
export async function erasePass(deps: ErasureDeps, target: ErasureTarget, since: number): Promise<{ settled: boolean }> {
  await eraseRecords(deps, target.kind, target.id);
  const { settled } = await eraseRedisTraces({ redis: deps.redis, queues: deps.queues, prefix: deps.config.QUEUE_PREFIX }, target.id, since);
  if (settled) await eraseRecords(deps, target.kind, target.id);
  return { settled };
}
