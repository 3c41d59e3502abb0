import { Job } from 'bullmq';
import { logger } from '../logger';
import type { QueueSet } from './queues';
import type { StepName } from './steps';

export type StepTimeoutData = { queue: StepName; stepJobId: string };

/**
 * Fires STEP_TIMEOUT_MS after a step was queued. A step still unfinished by then (no GPU worker, a
 * hung one) is detached from its parent, which wakes up, finds it unfinished and fails the job.
 * BullMQ has no job timeout of its own and a parent would otherwise wait forever.
 */
export function createStepTimeoutProcessor(queues: QueueSet) {
  const process = async (job: Job<StepTimeoutData>): Promise<{ released: boolean }> => {
    const step = await Job.fromId(queues.get(job.data.queue), job.data.stepJobId);
    if (!step) return { released: false };
    const state = await step.getState();
    if (state === 'completed' || state === 'failed') return { released: false };
    const released = await step.removeChildDependency();
    if (state !== 'active') await step.remove().catch(() => undefined);
    logger.warn('step timed out', { stepJobId: job.data.stepJobId, stepState: state, released });
    return { released };
  };
  return process;
}
