import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** Queues consumed by the TypeScript orchestrator role. */
export const ORCHESTRATOR_QUEUES = {
  portrait: 'portrait',
  /** One job per firing of a schedule (BullMQ job schedulers); each starts a batch. */
  schedule: 'schedule',
  /** Delayed watchdog jobs that release a parent whose step never finished. */
  stepTimeouts: 'step-timeouts',
} as const;

/** A batch's orchestrator job, when the workflow job is one of its children. */
export type ParentJob = { id: string; queue: string };

/**
 * Options of a workflow's own orchestrator job (portrait, generation, batch): its retries cover the
 * orchestrator's infrastructure errors (a MongoDB or Redis blip), not the steps'. As a batch's
 * child, its failure still wakes the batch (which counts it) instead of failing the batch.
 */
export const orchestratorJobOptions = (jobId: string, retentionS: number, parent?: ParentJob) => ({
  jobId,
  attempts: 8,
  backoff: { type: 'exponential' as const, delay: 500 },
  removeOnComplete: { age: retentionS },
  removeOnFail: { age: retentionS },
  ...(parent ? { parent, ignoreDependencyOnFailure: true } : {}),
});

/** The orchestrator job of a portrait job's cycle (a retry starts cycle 2, 3, ...). */
export const portraitJobId = (jobId: string, cycle = 1) => (cycle === 1 ? `portrait-${jobId}` : `portrait-${jobId}-c${cycle}`);

/**
 * The BullMQ queues one process uses, one instance per name on the process's connection: routes,
 * workflows and the dashboard share them instead of each opening its own. Closed together.
 */
export class QueueSet {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly connection: Redis,
    private readonly prefix: string,
  ) {}

  get<T = any>(name: string): Queue<T> {
    let queue = this.queues.get(name);
    if (!queue) this.queues.set(name, (queue = new Queue(name, { connection: this.connection, prefix: this.prefix })));
    return queue as Queue<T>;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}
