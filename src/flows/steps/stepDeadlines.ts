import type { Redis } from 'ioredis';
import { logger } from '../../logger';
import { GPU_QUEUES, type GpuQueue } from '../queues';
import { stepDeadlinesKey } from '../redisKeys';
import type { WorkflowTransaction } from './workflowTransaction';

/**
 * The step watchdog. BullMQ has no job timeout of its own and a parent would otherwise wait
 * forever, so every queued step has a deadline in one sorted set (`<prefix>:step-deadlines`,
 * member `<queue>/<stepJobId>`), added by the transition that queues the step and removed by the one
 * that folds its outcome: one ZADD and one ZREM per step, instead of a delayed job per step. Every
 * orchestrator process sweeps the set; a step still unfinished past its deadline (no GPU worker, a
 * hung one) is released from its parent (stepJobs.ts releaseStep), which wakes, finds it
 * unfinished and fails the job. Releasing is idempotent, so any number of processes may sweep the
 * same entry.
 */

/** Releases an unfinished step from its parent; true when it did (false: finished, or gone). */
export type ReleaseStep = (queue: GpuQueue, stepJobId: string) => Promise<boolean>;

const member = (queue: GpuQueue, stepJobId: string) => `${queue}/${stepJobId}`;

export function addStepDeadline(tx: WorkflowTransaction, prefix: string, queue: GpuQueue, stepJobId: string, at: number): void {
  tx.zadd(stepDeadlinesKey(prefix), at, member(queue, stepJobId));
}

export function clearStepDeadline(tx: WorkflowTransaction, prefix: string, queue: GpuQueue, stepJobId: string): void {
  tx.zrem(stepDeadlinesKey(prefix), member(queue, stepJobId));
}

/** Releases the steps past their deadline; returns how many it released. */
export async function sweepStepDeadlines(redis: Redis, prefix: string, release: ReleaseStep, now = Date.now()): Promise<number> {
  const key = stepDeadlinesKey(prefix);
  let released = 0;
  const handled: string[] = []; // removed together; one whose release threw stays for the next sweep
  try {
    for (const entry of await redis.zrangebyscore(key, '-inf', now, 'LIMIT', 0, 100)) {
      const [queue, stepJobId] = entry.split('/');
      if (queue in GPU_QUEUES && (await release(queue as GpuQueue, stepJobId))) {
        logger.warn('step timed out', { stepJobId });
        released++;
      }
      handled.push(entry);
    }
  } finally {
    if (handled.length > 0) await redis.zrem(key, ...handled);
  }
  return released;
}

/**
 * Sweeps every tenth of the step timeout (between 0.1 and 5 s), so a step is released at most that
 * long after its deadline. Close it with the process.
 */
export function startStepDeadlineSweeper(redis: Redis, prefix: string, timeoutMs: number, release: ReleaseStep): { close(): Promise<void> } {
  let sweeping: Promise<unknown> = Promise.resolve();
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    sweeping = sweepStepDeadlines(redis, prefix, release)
      .catch((err) => logger.warn('step deadline sweep failed', { error: String(err) }))
      .finally(() => (busy = false));
  }, Math.min(5000, Math.max(100, timeoutMs / 10)));
  return {
    async close() {
      clearInterval(timer);
      await sweeping;
    },
  };
}
