import type { Job } from 'bullmq';
import { logger } from '../../logger';
import type { StepTimeoutData } from '../contracts/stepTimeout';
import type { QueueSet } from '../queues';
import { releaseStep } from './stepJobs';

/**
 * Fires STEP_TIMEOUT_MS after a step was queued. A step still unfinished by then (no GPU worker, a
 * hung one) is released from its parent, which wakes up, finds it unfinished and fails the job.
 * BullMQ has no job timeout of its own and a parent would otherwise wait forever.
 */
export function createStepTimeoutProcessor(queues: QueueSet) {
  return async (job: Job<StepTimeoutData>): Promise<{ released: boolean }> => {
    const released = await releaseStep(queues.get(job.data.queue), job.data.stepJobId, 'detach');
    if (released) logger.warn('step timed out', { stepJobId: job.data.stepJobId });
    return { released };
  };
}
