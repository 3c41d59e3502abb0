/** Queues consumed by the TypeScript orchestrator role. */
export const ORCHESTRATOR_QUEUES = {
  portrait: 'portrait',
  /** Delayed watchdog jobs that release a parent whose step never finished. */
  stepTimeouts: 'step-timeouts',
} as const;

/**
 * Options of a workflow's own orchestrator job (portrait, generation): its retries cover the
 * orchestrator's infrastructure errors (a MongoDB or Redis blip), not the steps'.
 */
export const orchestratorJobOptions = (jobId: string, retentionS: number) => ({
  jobId,
  attempts: 8,
  backoff: { type: 'exponential' as const, delay: 500 },
  removeOnComplete: { age: retentionS },
  removeOnFail: { age: retentionS },
});

/** The orchestrator job of a portrait job's cycle (a retry starts cycle 2, 3, ...). */
export const portraitJobId = (jobId: string, cycle = 1) => (cycle === 1 ? `portrait-${jobId}` : `portrait-${jobId}-c${cycle}`);
