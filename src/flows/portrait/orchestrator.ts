import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { JobModel } from '../../store/jobModel';
import { isCancelled } from '../cancellation';
import { PortraitState } from '../contracts/portraitState';
import { portraitJobId, webhookId } from '../ids';
import { addJobEvent } from '../jobEvents';
import { QueueName, stepQueue, type QueueSet } from '../queues';
import type { StepOutcome } from '../steps/outcomes';
import type { StepName } from '../steps/registry';
import { releaseStep } from '../steps/stepJobs';
import { StepRunner } from '../steps/stepRunner';
import { asBullMQTransaction, type WorkflowTransaction } from '../steps/workflowTransaction';
import type { WebhookEvent } from '../webhooks/events';
import { queueWebhook } from '../webhooks/notify';
import type { WorkflowMetrics } from '../workflowMetrics';
import { writeJobDocument } from './jobDocument';
import { applyStepOutcome, planTransition, type StepRef } from './stateMachine';

/** A retry cycle's transitions are new ones: its webhooks get ids of their own (cycle 1 keeps the plain ids). */
const cycleOf = (state: PortraitState) => (state.cycle > 1 ? [`c${state.cycle}`] : []);
/** A portrait's steps run on their queues, its generate step on the editing-model pool's. */
const queueOf = (step: StepName) => stepQueue(step, 'portrait');

/** One step job of the workflow. */
type StepJobRef = StepRef & { stepJobId: string };

/** A step outcome folded into the state, still to be announced (event, metrics, webhook) with the next transition. */
type UnannouncedOutcome = StepJobRef & { outcome: StepOutcome; queuedAt: number };

/**
 * The Job document is written at the transitions a reader needs: when the job starts running, at
 * the hand-off after a step that took at least this long (queued to finished), and at the end.
 * After quicker steps it waits for one of those (GET /jobs/:id reads the live state meanwhile).
 */
const DOCUMENT_LAG_MS = 1000;

/**
 * Drives one portrait job through the state machine with BullMQ's step-job pattern: the state lives
 * in job.data, each GPU step is a child job added at run time with a deterministic id, and the
 * processor parks itself in waiting-children until that child finishes. A crash at any point
 * replays from job.data; re-adding an existing child is a no-op, so no step runs twice.
 *
 * A transition costs two Redis round trips: on waking, the child's outcome and the cancel flag are
 * read together; then the next child, its deadline, the new state, the events, webhooks and
 * metrics and the parking itself go in one transaction (the step runner, stepRunner.ts). The Job
 * document is written within the activation, before parking (a job's activations never overlap, so
 * neither do its writes: on FerretDB, two concurrent updates of a document can lose one), guarded
 * by the state's revision, and only where a reader needs it (DOCUMENT_LAG_MS); the final status is
 * written before the BullMQ job completes.
 */
export class PortraitOrchestrator {
  private readonly runner: StepRunner;

  constructor(
    private readonly config: Config,
    private readonly connection: Redis,
    private readonly queues: QueueSet,
    private readonly metrics: WorkflowMetrics,
  ) {
    this.runner = new StepRunner(config, connection, metrics);
  }

  readonly process = async (job: Job<PortraitState>, token?: string): Promise<{ status: string }> => {
    let state = PortraitState.parse(job.data);
    let unannounced: UnannouncedOutcome | undefined;
    let abandoned: StepJobRef | undefined; // the step a cancel left unfinished
    for (;;) {
      const plan = planTransition(state, Date.now());
      if (plan.kind === 'await') {
        const stepJobId = plan.record.stepJobId;
        const [cancelled, finished] = await Promise.all([this.cancelRequested(state), this.runner.readOutcome(this.stepQueue(plan.step), stepJobId)]);
        if (cancelled) {
          state = { ...state, cancelled: true };
          abandoned = { step: plan.step, attempt: plan.attempt, stepJobId };
          continue;
        }
        const outcome = finished ?? (await this.runner.waitForOutcome(job, token!, this.stepQueue(plan.step), stepJobId));
        state = applyStepOutcome(state, plan, outcome);
        unannounced = { step: plan.step, attempt: plan.attempt, stepJobId, outcome, queuedAt: plan.record.queuedAt };
        continue;
      }
      // A job that has read nothing yet in this run checks the cancel flag before it queues anything.
      if (plan.kind === 'queue' && !unannounced && (await this.cancelRequested(state))) {
        state = { ...state, cancelled: true };
        continue;
      }
      if (plan.kind === 'done') {
        await this.finish(state, plan.status, unannounced, abandoned);
        return { status: plan.status };
      }
      state = plan.state;
      if (!unannounced || Date.now() - unannounced.queuedAt >= DOCUMENT_LAG_MS) await writeJobDocument(state, 'running');
      const portraitQueue = this.queues.get(QueueName.portrait);
      const tx = await this.runner.begin(portraitQueue);
      if (unannounced) await this.announceOutcome(tx, state, unannounced);
      await this.announceStep(tx, state, { step: plan.step, attempt: plan.attempt, status: 'queued' });
      const step = { tenant: state.tenant ?? 'local', step: plan.step, queue: this.stepQueue(plan.step), stepJobId: plan.record.stepJobId, input: plan.input };
      await this.runner.queueStepAndPark(tx, { queue: portraitQueue, job, token: token!, data: state }, step);
      unannounced = undefined;
      // Not parked: a replay found the step already finished; the loop reads it.
    }
  };

  /**
   * A cancel request (cancellation.ts) for a job whose step is still queued: the step is removed and
   * detached, so the parent wakes now and ends `cancelled` (a running step is aborted by the worker
   * holding it).
   */
  readonly releaseCancelled = async (jobId: string): Promise<void> => {
    const doc = await JobModel.findById(jobId, { cycle: 1 }).lean<{ cycle?: number }>();
    const job = doc && (await this.queues.get(QueueName.portrait).getJob(portraitJobId(jobId, doc.cycle ?? 1)));
    if (!job) return;
    const plan = planTransition(PortraitState.parse(job.data), Date.now());
    if (plan.kind !== 'await' || !(await releaseStep(this.stepQueue(plan.step), plan.record.stepJobId, 'leave'))) return;
    logger.info('queued step removed for a cancelled job', { jobId, stepJobId: plan.record.stepJobId });
  };

  private stepQueue(step: StepName) {
    return this.queues.get(queueOf(step));
  }

  /** Only asked of a job still running (a cancelled state plans `done`, never `await` or `queue`). */
  private cancelRequested(state: PortraitState): Promise<boolean> {
    return isCancelled(this.connection, this.config.QUEUE_PREFIX, state.jobId);
  }

  /**
   * The final status: the document first (waited for), then the events, metrics and webhook in one
   * MULTI (its order is the events' order), with the deadline of a step the cancel left unfinished.
   */
  private async finish(state: PortraitState, status: string, unannounced: UnannouncedOutcome | undefined, abandoned: StepJobRef | undefined): Promise<void> {
    await writeJobDocument(state, status);
    logger.info('portrait job finished', { status, attempts: state.attempts.length });
    const tx = await this.runner.begin(this.queues.get(QueueName.portrait));
    if (unannounced) await this.announceOutcome(tx, state, unannounced);
    if (abandoned) this.runner.abandon(tx, state.tenant ?? 'local', this.stepQueue(abandoned.step), abandoned.stepJobId);
    addJobEvent(tx, this.config.QUEUE_PREFIX, state.jobId, 'status', { status });
    this.metrics.portraitFinished(tx, status, state.attempts.length);
    await this.notify(tx, state, `job.${status}` as WebhookEvent, webhookId(state.jobId, ...cycleOf(state), status), { status });
    await this.runner.commit(tx);
  }

  /** A step outcome folded into the state, announced on the transition that follows it: its event and webhook; the runner's metrics and deadline. */
  private async announceOutcome(tx: WorkflowTransaction, state: PortraitState, folded: UnannouncedOutcome): Promise<void> {
    const { step, attempt, stepJobId, outcome } = folded;
    await this.announceStep(tx, state, { step, attempt, status: outcome.status });
    this.runner.foldOutcome(tx, state.tenant ?? 'local', step, this.stepQueue(step), stepJobId, outcome);
  }

  /** A step's transition: its event in the job's log and its `job.step` webhook. */
  private announceStep(tx: WorkflowTransaction, state: PortraitState, data: { step: StepName; attempt?: number; status: string }): Promise<void> {
    const event = { step: data.step, attempt: data.attempt ?? null, status: data.status };
    addJobEvent(tx, this.config.QUEUE_PREFIX, state.jobId, 'step', event);
    return this.notify(tx, state, 'job.step', webhookId(state.jobId, ...cycleOf(state), `a${event.attempt ?? 'r'}`, event.step, event.status), event);
  }

  private notify(tx: WorkflowTransaction, state: PortraitState, type: WebhookEvent, id: string, data: Record<string, unknown>): Promise<void> {
    const event = { type, id, jobId: state.jobId, tenant: state.tenant ?? 'local', data: { job_id: state.jobId, ...data } };
    return queueWebhook(this.queues.get(QueueName.notify), this.config, state.webhook, event, asBullMQTransaction(tx));
  }
}
