import type { ChainableCommander, Redis } from 'ioredis';
import { jobEventsKey } from './redisKeys';

/**
 * Each job's event log: a Redis stream `<prefix>:events:<jobId>` that the orchestrator appends every
 * transition to and the GPU worker its progress (gpu-worker/apex_gpu_worker/job_events.py). Stream
 * ids are the SSE event ids, so a client reconnecting with Last-Event-ID resumes exactly after the
 * last event it saw. Kept a week, capped in length.
 */

export type JobEventType = 'status' | 'step' | 'progress';
export type JobEvent = { id: string; type: JobEventType; data: Record<string, unknown> };

/**
 * How long a log is kept and how many events it holds: the GPU worker's appends keep the same
 * bounds (`npm run contracts` exports them with the Redis key layout, contracts/redis-keys.json).
 */
export const JOB_EVENT_LOG_LIMITS = { maxEvents: 2000, ttlSeconds: 7 * 24 * 3600 } as const;

export async function appendJobEvent(redis: Redis, prefix: string, jobId: string, type: JobEventType, data: Record<string, unknown>): Promise<void> {
  await addJobEvent(redis.multi(), prefix, jobId, type, data).exec();
}

/** Queues the append on `tx` (a workflow transaction), so the event is written with the transition it tells of. */
export function addJobEvent(tx: ChainableCommander, prefix: string, jobId: string, type: JobEventType, data: Record<string, unknown>): ChainableCommander {
  const key = jobEventsKey(prefix, jobId);
  const { maxEvents, ttlSeconds } = JOB_EVENT_LOG_LIMITS;
  return tx.xadd(key, 'MAXLEN', '~', String(maxEvents), '*', 'type', type, 'data', JSON.stringify(data)).expire(key, ttlSeconds);
}

const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;
const MAX_ID_PART = 2n ** 64n - 1n;

/** A stream id Redis accepts (`<ms>-<seq>`, each part a 64-bit unsigned number), else undefined. */
export function parseStreamId(text: string): string | undefined {
  const match = STREAM_ID.exec(text);
  return match && BigInt(match[1]) <= MAX_ID_PART && BigInt(match[2]) <= MAX_ID_PART ? text : undefined;
}

/** Orders stream ids ('0' is before every entry): negative, zero or positive like a sort comparator. */
export function compareStreamIds(a: string, b: string): number {
  const [aMs, aSeq = '0'] = a.split('-');
  const [bMs, bSeq = '0'] = b.split('-');
  const diff = BigInt(aMs) - BigInt(bMs) || BigInt(aSeq) - BigInt(bSeq);
  return diff === 0n ? 0 : diff < 0n ? -1 : 1;
}

export function parseJobEvents(entries: [string, string[]][]): JobEvent[] {
  return entries.map(([id, fields]) => {
    const map = Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]));
    return { id, type: map.type as JobEventType, data: JSON.parse(map.data ?? '{}') };
  });
}

/** Events after `afterId` ('0' = from the start), waiting up to `blockMs` for the first new one. */
export async function readJobEvents(redis: Redis, prefix: string, jobId: string, afterId: string, blockMs: number): Promise<JobEvent[]> {
  const res = (await redis.xread('COUNT', 100, 'BLOCK', blockMs, 'STREAMS', jobEventsKey(prefix, jobId), afterId)) as
    | [string, [string, string[]][]][]
    | null;
  return res ? parseJobEvents(res[0][1]) : [];
}
