import type { Job, Queue } from 'bullmq';
import type { Config } from '../config';
import type { StepName } from './steps';
import type { StepTimeoutData } from './stepTimeouts';

/**
 * Adds a GPU step as a child of `parent`, the way every workflow does it: a deterministic id (a
 * replay gets the existing job), retries with backoff, the parent released when the step fails
 * (it records the failure instead of hanging), and a watchdog that releases it after
 * STEP_TIMEOUT_MS if the step never finishes.
 */
export async function addStepJob(
  config: Config,
  queues: { step: Queue; timeouts: Queue<StepTimeoutData> },
  parent: Job,
  step: StepName,
  stepJobId: string,
  input: unknown,
): Promise<void> {
  const retention = { age: config.STEP_RETENTION_S };
  await queues.step.add(step, input, {
    jobId: stepJobId,
    parent: { id: parent.id!, queue: parent.queueQualifiedName },
    attempts: config.STEP_RETRIES,
    backoff: { type: 'exponential', delay: config.STEP_BACKOFF_MS },
    ignoreDependencyOnFailure: true,
    removeOnComplete: retention,
    removeOnFail: retention,
  });
  await queues.timeouts.add(
    'step-timeout',
    { queue: step, stepJobId },
    { jobId: `${stepJobId}-timeout`, delay: config.STEP_TIMEOUT_MS, removeOnComplete: true, removeOnFail: true },
  );
}
