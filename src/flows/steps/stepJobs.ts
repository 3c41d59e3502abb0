import { Job, type Queue } from 'bullmq';
import type { Config } from '../../config';
import { currentTraceCarrier } from '../../telemetry';
import { stepTimeoutJobId } from '../ids';
import { QueueName, type GpuQueue, type QueueSet } from '../queues';
import type { StepOutcome } from './outcomes';
import type { StepInput, StepName } from './registry';

/**
 * Adds a GPU step as a child of `parent`, the way every workflow does it: a deterministic id (a
 * replay gets the existing job), retries with backoff, the parent released when the step fails
 * (it records the failure instead of hanging), and a watchdog that releases it after
 * STEP_TIMEOUT_MS if the step never finishes. The step continues the orchestrator's trace.
 */
export async function addStepJob<S extends StepName>(
  config: Config,
  queues: QueueSet,
  parent: Job,
  step: S,
  stepJobId: string,
  input: StepInput<S>,
  queue: GpuQueue = step,
): Promise<void> {
  const retention = { age: config.STEP_RETENTION_S };
  const trace = currentTraceCarrier();
  // Typed by StepInput<S> above; BullMQ's own generics cannot follow a generic queue name.
  await (queues.get(queue) as Queue).add(step, trace ? { ...input, trace } : input, {
    jobId: stepJobId,
    parent: { id: parent.id!, queue: parent.queueQualifiedName },
    attempts: config.STEP_RETRIES,
    backoff: { type: 'exponential', delay: config.STEP_BACKOFF_MS },
    ignoreDependencyOnFailure: true,
    removeOnComplete: retention,
    removeOnFail: retention,
  });
  await queues.get(QueueName.stepTimeouts).add(
    'step-timeout',
    { queue, stepJobId },
    { jobId: stepTimeoutJobId(stepJobId), delay: config.STEP_TIMEOUT_MS, removeOnComplete: true, removeOnFail: true },
  );
}

/** How a step child ended (see outcomes.ts); `timed_out` when it was released unfinished. */
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
 * Releases an unfinished step: detaches it from its parent, which wakes now and records it as not
 * finished, and removes it unless a worker holds it. A cancel (`running: 'leave'`) releases only a
 * step that has not started, since the worker holding a running one aborts it itself; the watchdog
 * (`running: 'detach'`) releases a hung running step too. True when a step was released.
 */
export async function releaseStep(queue: Queue, stepJobId: string, running: 'leave' | 'detach'): Promise<boolean> {
  const step = await Job.fromId(queue, stepJobId);
  const state = step ? await step.getState() : 'unknown';
  if (!step || ['completed', 'failed', 'unknown'].includes(state) || (state === 'active' && running === 'leave')) return false;
  const released = await step.removeChildDependency();
  if (state !== 'active') await step.remove().catch(() => undefined);
  return released;
}
