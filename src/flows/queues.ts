import { STEP_NAMES } from './steps';

/** Queues consumed by the TypeScript orchestrator role. */
export const ORCHESTRATOR_QUEUES = {
  portrait: 'portrait',
  /** Delayed watchdog jobs that release a parent whose step never finished. */
  stepTimeouts: 'step-timeouts',
} as const;

/** Every queue of the product, for health views and cleanup. */
export const ALL_QUEUES = [...Object.values(ORCHESTRATOR_QUEUES), ...STEP_NAMES];

/** BullMQ refuses custom ids that contain ':' or are all digits; ours are `portrait-<hex id>`. */
export const portraitJobId = (jobId: string) => `portrait-${jobId}`;
