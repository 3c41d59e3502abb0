import type { Redis } from 'ioredis';
import { ALL_QUEUES, type QueueName, type QueueSet } from '../queues';
import { stepDeadlinesKey } from '../redisKeys';

/**
 * Everything Redis holds of some resources, in one sweep whatever their number. Every key of ours
 * and of BullMQ that belongs to a resource has its id in its name (ids.ts: `portrait-<id>`,
 * `<id>-a1-prompt`, `whk-<id>-…`, redisKeys.ts: `events:<id>`, `cancelled:<id>`), so one SCAN of the
 * prefix finds them whatever the workflow did (MATCH on the id when there is one). BullMQ's jobs are
 * removed through BullMQ (so no queue list or set keeps their ids), then what is left is deleted;
 * the step deadlines, a batch parent's record of the child, and the queues' own event streams
 * (`<queue>:events`, whose `completed` entries carry return values such as a VLM's prompt) are
 * cleaned of the ids too.
 *
 * A job that is running cannot be removed (BullMQ refuses a locked job): then its resource is
 * `running`, its keys stay (the cancel flag too, so the job stops), and its erasure is tried again
 * (resourceErasure.ts, pendingErasures.ts). A resource not running left nothing that could still
 * write: only a running job writes.
 */
export async function eraseRedisTraces(deps: { redis: Redis; queues: QueueSet; prefix: string }, targets: { id: string; since: number }[]): Promise<{ running: Set<string> }> {
  const { redis, queues, prefix } = deps;
  const running = new Set<string>();
  if (targets.length === 0) return { running };
  const ids = targets.map((t) => t.id);
  const idsIn = (text: string) => ids.filter((id) => text.includes(id));
  const mentions = new RegExp(ids.map((id) => id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'));
  const pattern = ids.length === 1 ? `${prefix}:*${ids[0]}*` : `${prefix}:*`;
  const keys = (await scanKeys(redis, pattern)).filter((k) => mentions.test(k));
  const queueNames = new Set<string>(ALL_QUEUES);
  const jobs = new Map<string, { queue: QueueName; jobId: string }>();
  for (const key of keys) {
    const [, queue, jobId] = key.slice(prefix.length).split(':');
    if (queueNames.has(queue) && jobId && mentions.test(jobId)) jobs.set(`${queue}:${jobId}`, { queue: queue as QueueName, jobId });
  }
  for (const { queue, jobId } of jobs.values()) {
    const jobKey = `${prefix}:${queue}:${jobId}`;
    const parentKey = await redis.hget(jobKey, 'parentKey');
    await queues.get(queue).remove(jobId, { removeChildren: true });
    if ((await redis.exists(jobKey)) === 1) {
      for (const id of idsIn(jobId)) running.add(id); // running (locked), itself or a child
      continue;
    }
    // BullMQ forgets a removed child only among its parent's pending dependencies, not its results.
    if (parentKey) await redis.multi().hdel(`${parentKey}:processed`, jobKey).hdel(`${parentKey}:failed`, jobKey).zrem(`${parentKey}:unsuccessful`, jobKey).exec();
  }
  // While something still runs, its keys (its lock among them) and the cancel flag it must see stay for the next pass.
  const left = running.size === ids.length ? [] : (await scanKeys(redis, pattern)).filter((k) => mentions.test(k) && !idsIn(k).some((id) => running.has(id)));
  for (let i = 0; i < left.length; i += 500) await redis.del(...left.slice(i, i + 500));
  await removeMembers(redis, stepDeadlinesKey(prefix), mentions);
  const since = Math.min(...targets.map((t) => t.since));
  for (const queue of ALL_QUEUES) await scrubEventStream(redis, `${prefix}:${queue}:events`, mentions, since);
  return { running };
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

async function removeMembers(redis: Redis, key: string, mentions: RegExp): Promise<void> {
  let cursor = '0';
  do {
    const [next, entries] = await redis.zscan(key, cursor, 'COUNT', 1000);
    const members = entries.filter((m, i) => i % 2 === 0 && mentions.test(m));
    if (members.length > 0) await redis.zrem(key, ...members);
    cursor = next;
  } while (cursor !== '0');
}

/** Deletes the stream entries that mention one of the ids, reading from `since` (ms: the earliest resource's creation) on, in pages. */
async function scrubEventStream(redis: Redis, key: string, mentions: RegExp, since: number): Promise<void> {
  let start = String(Math.max(0, since));
  for (;;) {
    const page = (await redis.xrange(key, start, '+', 'COUNT', 500)) as [string, string[]][];
    const mentioning = page.filter(([, fields]) => fields.some((f) => mentions.test(f))).map(([entryId]) => entryId);
    if (mentioning.length > 0) await redis.xdel(key, ...mentioning);
    if (page.length < 500) return;
    start = `(${page.at(-1)![0]}`;
  }
}
