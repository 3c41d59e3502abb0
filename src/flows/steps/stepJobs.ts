import { Job, WaitingChildrenError, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { currentTraceCarrier } from '../../telemetry';
import type { GpuQueue } from '../queues';
import { asBullMQTransaction, type WorkflowTransaction } from './workflowTransaction';
import type { StepOutcome } from './outcomes';
import type { StepInput, StepName } from './registry';
import { addStepDeadline } from './stepDeadlines';

/**
 * Adds a GPU step as a child of `parent` on the workflow transaction `tx`, the way every workflow does it: a
 * deterministic id (a replay gets the existing job), retries with backoff, the parent released
 * when the step fails (it records the failure instead of hanging), and a deadline after which the
 * watchdog releases it if it never finishes (stepDeadlines.ts). The step continues the
 * orchestrator's trace. Its priority orders it among the waiting steps (fair dispatch between
 * tenants, fairness/fairDispatch.ts).
 */
export async function addStepJob<S extends StepName>(
  tx: WorkflowTransaction,
  config: Config,
  queue: Queue,
  parent: Job,
  step: S,
  stepJobId: string,
  input: StepInput<S>,
  priority: number,
  timeoutMs = config.STEP_TIMEOUT_MS,
): Promise<void> {
  const retention = { age: config.STEP_RETENTION_S };
  const trace = currentTraceCarrier();
  const child = new Job(queue, step, trace ? { ...input, trace } : input, {
    parent: { id: parent.id!, queue: parent.queueQualifiedName },
    attempts: config.STEP_RETRIES,
    backoff: { type: 'exponential', delay: config.STEP_BACKOFF_MS },
    ignoreDependencyOnFailure: true,
    removeOnComplete: retention,
    removeOnFail: retention,
    priority,
  }, stepJobId);
  // As Job.create does it, but on the transaction's MULTI (as FlowProducer adds its jobs).
  await child.addJob(asBullMQTransaction(tx), { parentKey: child.parentKey, parentDependenciesKey: `${child.parentKey}:dependencies` });
  addStepDeadline(tx, config.QUEUE_PREFIX, queue.name as GpuQueue, stepJobId, Date.now() + timeoutMs);
}

/** The fields of BullMQ's job hash that say how a job ended (as Job.fromJSON reads them). */
const OUTCOME_FIELDS = ['finishedOn', 'returnvalue', 'failedReason', 'processedOn', 'atm'] as const;

/**
 * How a step child ended (see outcomes.ts), in one command; undefined while it has not finished
 * (or no longer exists: a step released unfinished is removed). BullMQ sets `finishedOn` only when
 * a job completes or fails for good (never between retries), with `returnvalue` or `failedReason`.
 */
export async function readStepOutcome(redis: Redis, queue: Queue, stepJobId: string): Promise<StepOutcome | undefined> {
  const [finishedOn, returnvalue, failedReason, processedOn, attemptsMade] = await redis.hmget(queue.toKey(stepJobId), ...OUTCOME_FIELDS);
  if (!finishedOn) return undefined;
  const times = { startedAt: processedOn ? Number(processedOn) : undefined, finishedAt: Number(finishedOn), tries: attemptsMade ? Number(attemptsMade) : undefined };
  if (returnvalue !== null) return { status: 'completed', value: JSON.parse(returnvalue), ...times };
  return { status: 'failed', reason: failedReason ?? 'unknown failure', ...times };
}

/**
 * Parks the parent until its step ends (throwing WaitingChildrenError, as BullMQ's step-job
 * pattern wants); when it cannot park, nothing is pending any more: the step finished just now, or
 * it was released unfinished (the watchdog, a cancel) and counts as `timed_out`.
 */
export async function parkUntilStepEnds(parent: Job, token: string, redis: Redis, queue: Queue, stepJobId: string): Promise<StepOutcome> {
  if (await parent.moveToWaitingChildren(token)) throw new WaitingChildrenError();
  return (await readStepOutcome(redis, queue, stepJobId)) ?? { status: 'timed_out' };
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
