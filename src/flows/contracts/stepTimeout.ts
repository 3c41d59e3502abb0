import type { StepName } from '../steps/registry';

/** Queue `step-timeouts`: the watchdog of one queued step (see steps/stepTimeouts.ts). */
export type StepTimeoutData = { queue: StepName; stepJobId: string };
