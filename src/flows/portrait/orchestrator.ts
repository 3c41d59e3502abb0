import { Job, WaitingChildrenError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { JobModel } from '../../store/jobModel';
import { isCancelled } from '../cancellation';
import { PortraitState } from '../contracts/portraitState';
import { portraitJobId, webhookId } from '../ids';
import { appendJobEvent, type JobEventType } from '../jobEvents';
import { QueueName, stepQueue, type QueueSet } from '../queues';
import type { StepName } from '../steps/registry';
import { addStepJob, readStepOutcome, releaseStep } from '../steps/stepJobs';
import type { WebhookEvent } from '../webhooks/events';
import { queueWebhook } from '../webhooks/notify';
import type { WorkflowMetrics } from '../workflowMetrics';
import { applyStepOutcome, bestAttempt, chosenImage, planTransition } from './stateMachine';

/** A retry cycle's transitions are new ones: its webhooks get ids of their own (cycle 1 keeps the plain ids). */
const cycleOf = (state: PortraitState) => (state.cycle > 1 ? [`c${state.cycle}`] : []);
/** A portrait's steps run on their queues, its generate step on the editing-model pool's. */
const queueOf = (step: StepName) => stepQueue(step, 'portrait');

/**
 * Drives one portrait job through the state machine with BullMQ's step-job pattern: the state lives
 * in job.data, each GPU step is a child job added at run time with a deterministic id, and the
 * processor parks itself in waiting-children until that child finishes. A crash at any point
 * replays from job.data; re-adding an existing child is a no-op, so no step runs twice.
 */
export class PortraitOrchestrator {
  constructor(
    private readonly config: Config,
    private readonly connection: Redis,
    private readonly queues: QueueSet,
    private readonly metrics: WorkflowMetrics,
  ) {}

  readonly process = async (job: Job<PortraitState>, token?: string): Promise<{ status: string }> => {
    let state = PortraitState.parse(job.data);
    for (;;) {
      if (!state.cancelled && (await isCancelled(this.connection, this.config.QUEUE_PREFIX, state.jobId))) {
        state = { ...state, cancelled: true };
      }
      const plan = planTransition(state, Date.now());
      if (plan.kind === 'done') {
        await this.mirror(state, plan.status);
        await this.event(state, 'status', { status: plan.status });
        await this.notify(state, `job.${plan.status}`, webhookId(state.jobId, ...cycleOf(state), plan.status), { status: plan.status });
        await this.metrics.portraitFinished(plan.status, state.attempts.length);
        return { status: plan.status };
      }
      if (plan.kind === 'queue') {
        state = plan.state;
        await addStepJob(this.config, this.queues, job, plan.step, plan.record.stepJobId, plan.input, queueOf(plan.step));
        logger.debug('step queued', { step: plan.step, attempt: plan.attempt, stepJobId: plan.record.stepJobId });
        await this.mirror(state, 'running');
        await job.updateData(state);
        await this.step(state, { step: plan.step, attempt: plan.attempt ?? null, status: 'queued' });
      }
      if (await job.moveToWaitingChildren(token!)) throw new WaitingChildrenError();
      // Persisted together with the next step's enqueue: replaying this fold is idempotent.
      const outcome = await readStepOutcome(this.queues.get(queueOf(plan.step)), plan.record.stepJobId);
      await this.metrics.stepFinished(plan.step, outcome);
      state = applyStepOutcome(state, plan, outcome);
      await this.step(state, { step: plan.step, attempt: plan.attempt ?? null, status: outcome.status });
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
    if (plan.kind !== 'await' || !(await releaseStep(this.queues.get(queueOf(plan.step)), plan.record.stepJobId, 'leave'))) return;
    logger.info('queued step removed for a cancelled job', { jobId, stepJobId: plan.record.stepJobId });
  };

  private async step(state: PortraitState, data: { step: StepName; attempt: number | null; status: string }): Promise<void> {
    await this.event(state, 'step', data);
    await this.notify(state, 'job.step', webhookId(state.jobId, ...cycleOf(state), `a${data.attempt ?? 'r'}`, data.step, data.status), data);
  }

  private notify(state: PortraitState, type: WebhookEvent, id: string, data: Record<string, unknown>): Promise<void> {
    const event = { type, id, jobId: state.jobId, tenant: state.tenant ?? 'local', data: { job_id: state.jobId, ...data } };
    return queueWebhook(this.queues.get(QueueName.notify), this.config, state.webhook, event);
  }

  /** Appends to the job's event log (SSE); a replayed transition may append it twice. */
  private event(state: PortraitState, type: JobEventType, data: Record<string, unknown>): Promise<void> {
    return appendJobEvent(this.connection, this.config.QUEUE_PREFIX, state.jobId, type, data);
  }

  /** Writes the Job document from the state: idempotent, so a replayed transition rewrites the same. */
  private async mirror(state: PortraitState, status: string): Promise<void> {
    const finished = status !== 'running';
    const best = finished ? bestAttempt(state) : undefined;
    // Filter on _id alone: FerretDB (the local MongoDB stand-in) pushes only that down to SQLite.
    await JobModel.updateOne(
      { _id: state.jobId },
      {
        $set: {
          status,
          attempts: state.attempts,
          report: state.report ?? null,
          error: state.error ?? null,
          cycle: state.cycle,
          history: state.history,
          result: best ? { attempt: best.number, imageKey: chosenImage(best).key, score: best.verdict!.score } : null,
          ...(finished ? { finishedAt: new Date() } : {}),
        },
      },
    );
    if (finished) logger.info('portrait job finished', { status, attempts: state.attempts.length });
  }
}
