/** Queues consumed by the TypeScript orchestrator role. */
export const ORCHESTRATOR_QUEUES = {
  portrait: 'portrait',
  /** Delayed watchdog jobs that release a parent whose step never finished. */
  stepTimeouts: 'step-timeouts',
} as const;

/** The orchestrator job of a portrait job's cycle (a retry starts cycle 2, 3, ...). */
export const portraitJobId = (jobId: string, cycle = 1) => (cycle === 1 ? `portrait-${jobId}` : `portrait-${jobId}-c${cycle}`);
