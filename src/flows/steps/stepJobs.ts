import { Job, type Queue } from 'bullmq';
import type { Config } from '../config';
import { currentTraceCarrier } from '../telemetry';
import type { StepOutcome } from './portraitStateMachine';
import { ORCHESTRATOR_QUEUES, type QueueSet } from './queues';
import type { StepName } from './steps';
import type { StepTimeoutData } from './stepTimeouts';

/**
 * Adds a GPU step as a child of `parent`, the way every workflow does it: a deterministic id (a
 * replay gets the existing job), retries with backoff, the parent released when the step fails
 * (it records the failure instead of hanging), and a watchdog that releases it after
 * STEP_TIMEOUT_MS if the step never finishes. The step continues the orchestrator's trace.
 */
export async function addStepJob(
  config: Config,
  queues: QueueSet,
  parent: Job,
  step: StepName,
  stepJobId: string,
  input: unknown,
): Promise<void> {
  const retention = { age: config.STEP_RETENTION_S };
  const trace = currentTraceCarrier();
  await queues.get(step).add(step, trace ? { ...(input as object), trace } : input, {
    jobId: stepJobId,
    parent: { id: parent.id!, queue: parent.queueQualifiedName },
    attempts: config.STEP_RETRIES,
    backoff: { type: 'exponential', delay: config.STEP_BACKOFF_MS },
    ignoreDependencyOnFailure: true,
    removeOnComplete: retention,
    removeOnFail: retention,
  });
  await queues.get<StepTimeoutData>(ORCHESTRATOR_QUEUES.stepTimeouts).add(
    'step-timeout',
    { queue: step, stepJobId },
    { jobId: `${stepJobId}-timeout`, delay: config.STEP_TIMEOUT_MS, removeOnComplete: true, removeOnFail: true },
  );
}

/** How a step child ended: its value or failure with timings, or `timed_out` when the watchdog released it. */
export async function readStepOutcome(queue: Queue, stepJobId: string): Promise<StepOutcome> {
  const child = await Job.fromId(queue, stepJobId);
  const times = { startedAt: child?.processedOn, finishedAt: child?.finishedOn, tries: child?.attemptsMade };
  const state = child ? await child.getState() : 'unknown';
  if (state === 'completed') return { status: 'completed', value: child!.returnvalue, ...times };
  if (state === 'failed') return { status: 'failed', reason: child!.failedReason, ...times };
  // Released by the step-timeout watchdog (or a cancel) while the step was still queued or running.
  return { status: 'timed_out' };
}

/**
 * A cancel request for a step that has not started: it is detached from its parent and removed,
 * so the parent wakes now. A running step is left to the worker holding it, which aborts it.
 */
export async function releaseIfQueued(queue: Queue, stepJobId: string): Promise<boolean> {
  const step = await Job.fromId(queue, stepJobId);
  if (!step || !['waiting', 'delayed', 'prioritized', 'waiting-children'].includes(await step.getState())) return false;
  await step.removeChildDependency();
  await step.remove().catch(() => undefined);
  return true;
}
