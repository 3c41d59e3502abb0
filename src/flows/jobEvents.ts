import type { Redis } from 'ioredis';

/**
 * Each job's event log: a Redis stream `<prefix>:events:<jobId>` that the orchestrator appends every
 * transition to and the GPU worker its progress (gpu-worker/apex_gpu_worker/job_events.py). Stream
 * ids are the SSE event ids, so a client reconnecting with Last-Event-ID resumes exactly after the
 * last event it saw. Kept a week, capped in length.
 */
export const jobEventsKey = (prefix: string, jobId: string) => `${prefix}:events:${jobId}`;

export type JobEventType = 'status' | 'step' | 'progress';
export type JobEvent = { id: string; type: JobEventType; data: Record<string, unknown> };

const MAX_EVENTS = 2000;
const TTL_S = 7 * 24 * 3600;
export const TERMINAL_STATUSES = new Set(['completed', 'failed_validation', 'failed', 'cancelled']);

export async function appendJobEvent(redis: Redis, prefix: string, jobId: string, type: JobEventType, data: Record<string, unknown>): Promise<void> {
  const key = jobEventsKey(prefix, jobId);
  await redis
    .multi()
    .xadd(key, 'MAXLEN', '~', String(MAX_EVENTS), '*', 'type', type, 'data', JSON.stringify(data))
    .expire(key, TTL_S)
    .exec();
}

function parse(entries: [string, string[]][]): JobEvent[] {
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
  return res ? parse(res[0][1]) : [];
}
