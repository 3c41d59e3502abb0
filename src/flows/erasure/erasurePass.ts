import { eraseDocumentsAndObjects } from './documentsAndObjects';
import type { ErasureDeps, ErasureTarget } from './erasureTarget';
import { eraseRedisTraces } from './redisTraces';

/** A resource to erase, with `since`: where its entries in the queues' event streams begin (ms, streamsSince). */
export type PassEntry = { target: ErasureTarget; since: number };

/**
 * One pass over everything some resources left: their documents and objects, then Redis (one sweep
 * for all of them). Returns those still `running`; the others can no longer write, and their
 * documents and objects are erased once more, for what a job wrote while the first sweep ran (a
 * step's upload, a webhook's delivery record).
 */
export async function erasePass<E extends PassEntry>(deps: ErasureDeps, entries: E[]): Promise<{ running: E[] }> {
  for (const { target } of entries) await eraseDocumentsAndObjects(deps, target.kind, target.id);
  const traces = entries.map(({ target, since }) => ({ id: target.id, since }));
  const { running } = await eraseRedisTraces({ redis: deps.redis, queues: deps.queues, prefix: deps.config.QUEUE_PREFIX }, traces);
  for (const { target } of entries) if (!running.has(target.id)) await eraseDocumentsAndObjects(deps, target.kind, target.id);
  return { running: entries.filter(({ target }) => running.has(target.id)) };
}
