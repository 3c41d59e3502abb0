import { DelayedError, WaitingChildrenError, type Job, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { readStepFailure } from '../contracts/stepErrors';
import type { GpuQueue } from '../queues';
import type { WorkflowMetrics } from '../workflowMetrics';
import type { StepOutcome } from './outcomes';
import { countStepEnded, planStepDispatch } from '../fairness/fairDispatch';
import type { StepInput, StepName } from './registry';
import { clearStepDeadline } from './stepDeadlines';
import { addStepJob, parkUntilStepEnds, readStepOutcome } from './stepJobs';
import { commitAndPark, commitWorkflowTransaction, openWorkflowTransaction, saveJobData, type WorkflowTransaction } from './workflowTransaction';

/** A workflow job that parks: its queue, the job, the processor's lock token, and the state it saves. */
export type ParkingJob = { queue: Queue; job: Job; token: string; data: unknown };

/** A GPU step as a workflow queues it: whose (the tenant it is dispatched and counted for), on which queue, under which deterministic id, with what input. */
export type QueuedStep<S extends StepName = StepName> = {
  tenant: string;
  step: S;
  queue: Queue;
  stepJobId: string;
  input: StepInput<S>;
  /** From being queued to the watchdog's release: STEP_TIMEOUT_MS unless the step needs longer (an identity's training). */
  timeoutMs?: number;
};

/** How long a workflow whose tenant is at its cap of GPU steps in flight waits before it tries to queue its step again. */
const IN_FLIGHT_RETRY_MS = 1000;

/** The steps a transaction folds (foldOutcome, abandon): the step it then queues is counted without them. */
const endedIn = new WeakMap<WorkflowTransaction, { queue: GpuQueue; stepJobId: string }[]>();

/**
 * How every workflow (portraits, generations, batches) hands work over and takes it back, with
 * BullMQ's step-job pattern: a transition's writes go in one transaction (workflowTransaction.ts)
 * whose commit also parks the workflow job in waiting-children, and a woken job reads how its step
 * ended and folds that outcome into the next transition.
 */
export class StepRunner {
  constructor(
    private readonly config: Config,
    private readonly connection: Redis,
    private readonly metrics: WorkflowMetrics,
  ) {}

  /** The transaction of a workflow job's next transition, on its queue's connection. */
  begin(workflowQueue: Queue): Promise<WorkflowTransaction> {
    return openWorkflowTransaction(workflowQueue);
  }

  commit(tx: WorkflowTransaction): Promise<unknown[]> {
    return commitWorkflowTransaction(tx);
  }

  /**
   * Queues the step as the job's child (with its tenant's fair-dispatch priority, and counted as the
   * tenant's), saves the job's state and parks it, all in the transaction: throws
   * WaitingChildrenError once parked; returns when a replay found the step already finished. A
   * tenant at its cap of GPU steps in flight queues nothing: the transaction is dropped and the job
   * moves to delayed (DelayedError), to replay this transition a little later.
   */
  async queueStepAndPark<S extends StepName>(tx: WorkflowTransaction, parking: ParkingJob, step: QueuedStep<S>): Promise<void> {
    const gpuQueue = step.queue.name as GpuQueue;
    const dispatch = await planStepDispatch(this.connection, this.config, step.tenant, gpuQueue, step.stepJobId, endedIn.get(tx) ?? []);
    if (!dispatch.admitted) {
      tx.discard();
      await parking.job.moveToDelayed(Date.now() + IN_FLIGHT_RETRY_MS + Math.floor(Math.random() * IN_FLIGHT_RETRY_MS), parking.token);
      throw new DelayedError();
    }
    await addStepJob(tx, this.config, step.queue, parking.job, step.step, step.stepJobId, step.input, dispatch.priority, step.timeoutMs);
    return this.saveAndPark(tx, parking);
  }

  /** Saves the job's state and parks it until its children end (throws WaitingChildrenError); returns when none is pending. */
  async saveAndPark(tx: WorkflowTransaction, { queue, job, token, data }: ParkingJob): Promise<void> {
    saveJobData(tx, queue, job, data);
    if (await commitAndPark(tx, queue, job, token)) throw new WaitingChildrenError();
  }

  /** Parks a job whose children were added already (a replay); returns when none is pending. */
  async park(job: Job, token: string): Promise<void> {
    if (await job.moveToWaitingChildren(token)) throw new WaitingChildrenError();
  }

  /** How a step ended, undefined while it runs: read together with whatever else a woken job reads. */
  readOutcome(stepQueue: Queue, stepJobId: string): Promise<StepOutcome | undefined> {
    return readStepOutcome(this.connection, stepQueue, stepJobId);
  }

  /** How a step ended; while it runs, the job parks until it does (throws WaitingChildrenError). */
  waitForOutcome(job: Job, token: string, stepQueue: Queue, stepJobId: string): Promise<StepOutcome> {
    return parkUntilStepEnds(job, token, this.connection, stepQueue, stepJobId);
  }

  /**
   * The Redis side of folding a step's outcome, on the transition that follows it: its metrics, its
   * deadline cleared, no longer counted as its tenant's. A failure's own wording (which callers
   * never see) goes to the log here.
   */
  foldOutcome(tx: WorkflowTransaction, tenant: string, step: StepName, stepQueue: Queue, stepJobId: string, outcome: StepOutcome): void {
    if (outcome.status === 'failed') {
      const { code, detail } = readStepFailure(outcome.reason);
      logger.warn('step failed', { step, stepJobId, code: code ?? 'step_failed', detail });
    }
    this.metrics.stepFinished(tx, step, outcome);
    clearStepDeadline(tx, this.config.QUEUE_PREFIX, stepQueue.name as GpuQueue, stepJobId);
    this.countEnded(tx, tenant, stepQueue, stepJobId);
  }

  /** Clears the deadline and the count of a step the workflow no longer waits for (a cancel left it unfinished). */
  abandon(tx: WorkflowTransaction, tenant: string, stepQueue: Queue, stepJobId: string): void {
    clearStepDeadline(tx, this.config.QUEUE_PREFIX, stepQueue.name as GpuQueue, stepJobId);
    this.countEnded(tx, tenant, stepQueue, stepJobId);
  }

  private countEnded(tx: WorkflowTransaction, tenant: string, stepQueue: Queue, stepJobId: string): void {
    countStepEnded(tx, this.config, tenant, stepQueue.name as GpuQueue, stepJobId);
    endedIn.set(tx, [...(endedIn.get(tx) ?? []), { queue: stepQueue.name as GpuQueue, stepJobId }]);
  }
}
