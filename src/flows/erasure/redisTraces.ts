import type { Redis } from 'ioredis';
import { ALL_QUEUES, type QueueName, type QueueSet } from '../queues';
import { stepDeadlinesKey } from '../redisKeys';

/**
 * Everything Redis holds of one resource. Every key of ours and of BullMQ that belongs to a resource
 * has its id in its name (ids.ts: `portrait-<id>`, `<id>-a1-prompt`, `whk-<id>-…`, redisKeys.ts:
 * `events:<id>`, `cancelled:<id>`), so one SCAN finds them whatever the workflow did. BullMQ's jobs
 * are removed through BullMQ (so no queue list or set keeps their ids), then what is left is
 * deleted; the step deadlines, a batch parent's record of the child, and the queues' own event
 * streams (`<queue>:events`, whose `completed` entries carry return values such as a VLM's prompt)
 * are cleaned of the id too.
 *
 * A job that is running cannot be removed (BullMQ refuses a locked job): then the pass is not
 * `settled`, the keys stay (the cancel flag too, so the job stops), and the erasure is tried
 * again (erasurePass.ts, pendingErasures.ts).
 * A settled pass left nothing that could still write: only a running job writes.
 */
export async function eraseRedisTraces(deps: { redis: Redis; queues: QueueSet; prefix: string }, id: string, since: number): Promise<{ settled: boolean }> {
  const { redis, queues, prefix } = deps;
  const keys = await scanKeys(redis, `${prefix}:*${id}*`);
  const queueNames = new Set<string>(ALL_QUEUES);
  const jobs = new Map<string, { queue: QueueName; jobId: string }>();
  for (const key of keys) {
    const [, queue, jobId] = key.slice(prefix.length).split(':');
    if (queueNames.has(queue) && jobId?.includes(id)) jobs.set(`${queue}:${jobId}`, { queue: queue as QueueName, jobId });
  }
  let settled = true;
  for (const { queue, jobId } of jobs.values()) {
    const jobKey = `${prefix}:${queue}:${jobId}`;
    const parentKey = await redis.hget(jobKey, 'parentKey');
    await queues.get(queue).remove(jobId, { removeChildren: true });
    if ((await redis.exists(jobKey)) === 1) {
      settled = false; // running (locked), itself or a child
      continue;
    }
    // BullMQ forgets a removed child only among its parent's pending dependencies, not its results.
    if (parentKey) await redis.multi().hdel(`${parentKey}:processed`, jobKey).hdel(`${parentKey}:failed`, jobKey).zrem(`${parentKey}:unsuccessful`, jobKey).exec();
  }
  // While something still runs, its keys (its lock among them) and the cancel flag it must see stay for the next pass.
  const left = settled ? await scanKeys(redis, `${prefix}:*${id}*`) : [];
  if (left.length > 0) await redis.del(...left);
  await removeMembers(redis, stepDeadlinesKey(prefix), id);
  for (const queue of ALL_QUEUES) await scrubEventStream(redis, `${prefix}:${queue}:events`, id, since);
  return { settled };
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}

async function removeMembers(redis: Redis, key: string, id: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, entries] = await redis.zscan(key, cursor, 'MATCH', `*${id}*`, 'COUNT', 1000);
    const members = entries.filter((_, i) => i % 2 === 0);
    if (members.length > 0) await redis.zrem(key, ...members);
    cursor = next;
  } while (cursor !== '0');
}

/** Deletes the stream entries that mention the id, reading from `since` (ms: the resource's creation) on, in pages. */
async function scrubEventStream(redis: Redis, key: string, id: string, since: number): Promise<void> {
  let start = String(Math.max(0, since));
  for (;;) {
    const page = (await redis.xrange(key, start, '+', 'COUNT', 500)) as [string, string[]][];
    const mentioning = page.filter(([, fields]) => fields.some((f) => f.includes(id))).map(([entryId]) => entryId);
    if (mentioning.length > 0) await redis.xdel(key, ...mentioning);
    if (page.length < 500) return;
    start = `(${page.at(-1)![0]}`;
  }
}
