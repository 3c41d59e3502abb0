import type { GpuQueue } from '../queues';

/** Queue `step-timeouts`: the watchdog of one queued step (see steps/stepTimeouts.ts). */
export type StepTimeoutData = { queue: GpuQueue; stepJobId: string };
