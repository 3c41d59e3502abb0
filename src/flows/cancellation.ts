import type { Redis } from 'ioredis';

/**
 * Cross-process cancellation (BullMQ cancels only in-process): a cancelled job id is marked in
 * `<prefix>:cancelled:<jobId>` (steps that start later refuse to run, the orchestrator ends the job
 * `cancelled`) and published on `<prefix>:cancel`, so every worker process — TypeScript or Python —
 * aborts what it holds for that job. gpu-worker/apex_gpu_worker/cancellation.py is the Python side.
 */
export const cancelChannel = (prefix: string) => `${prefix}:cancel`;
export const cancelledKey = (prefix: string, jobId: string) => `${prefix}:cancelled:${jobId}`;

const MARK_TTL_S = 30 * 24 * 3600;

export async function requestCancel(redis: Redis, prefix: string, jobId: string): Promise<void> {
  await redis.set(cancelledKey(prefix, jobId), '1', 'EX', MARK_TTL_S);
  await redis.publish(cancelChannel(prefix), jobId);
}

export async function isCancelled(redis: Redis, prefix: string, jobId: string): Promise<boolean> {
  return (await redis.exists(cancelledKey(prefix, jobId))) === 1;
}
