import type { Redis } from 'ioredis';
import { logger } from '../logger';
import { connectRedis } from '../redis';
import { cancelChannel, cancelledKey } from './redisKeys';

/**
 * Cross-process cancellation (BullMQ cancels only in-process): a cancelled job id is marked in
 * `<prefix>:cancelled:<jobId>` (steps that start later refuse to run, the orchestrator ends the job
 * `cancelled`) and published on `<prefix>:cancel`, so every worker process — TypeScript or Python —
 * aborts what it holds for that job. gpu-worker/apex_gpu_worker/cancellation.py is the Python side.
 */

const MARK_TTL_S = 30 * 24 * 3600;

export async function requestCancel(redis: Redis, prefix: string, jobId: string): Promise<void> {
  await redis.set(cancelledKey(prefix, jobId), '1', 'EX', MARK_TTL_S);
  await redis.publish(cancelChannel(prefix), jobId);
}

export async function isCancelled(redis: Redis, prefix: string, jobId: string): Promise<boolean> {
  return (await redis.exists(cancelledKey(prefix, jobId))) === 1;
}

/**
 * Hands every cancel request published from now on to each workflow's `release` (what it frees for
 * a cancelled id, such as a step still queued); the worker holding a running step aborts it itself,
 * as every process listens on the same channel. Close it with the process.
 */
export function listenForCancels(redisUrl: string, prefix: string, releases: ((id: string) => Promise<void>)[]): { close(): void } {
  const subscriber = connectRedis(redisUrl);
  void subscriber.subscribe(cancelChannel(prefix));
  subscriber.on('message', (_channel, id: string) => {
    for (const release of releases) {
      release(id).catch((err) => logger.warn('could not release a cancelled job', { jobId: id, error: String(err) }));
    }
  });
  return { close: () => subscriber.disconnect() };
}
