/** Queues consumed by the TypeScript orchestrator role. */
export const ORCHESTRATOR_QUEUES = {
  portrait: 'portrait',
  /** Delayed watchdog jobs that release a parent whose step never finished. */
  stepTimeouts: 'step-timeouts',
} as const;

/** BullMQ refuses custom ids that contain ':' or are all digits; ours are `portrait-<hex id>`. */
export const portraitJobId = (jobId: string) => `portrait-${jobId}`;
