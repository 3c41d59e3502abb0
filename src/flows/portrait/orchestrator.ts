import { Job, WaitingChildrenError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config';
import { logger } from '../logger';
import { JobModel } from '../store/jobModel';
import { isCancelled } from './cancellation';
import { appendJobEvent, type JobEventType } from './jobEvents';
import { NOTIFY_QUEUE, type WebhookEvent } from './webhooks/events';
import { queueWebhook } from './webhooks/notify';
import { PortraitState } from './contracts/portraitState';
import {
  applyStepOutcome,
  bestAttempt,
  buildStepInput,
  markStepQueued,
  planNextStep,
  stepRecordOf,
  type NextStep,
  type StepOutcome,
} from './portraitStateMachine';
import type { QueueSet } from './queues';
import { addStepJob, readStepOutcome, releaseIfQueued } from './stepJobs';
import { STEPS, type StepName } from './steps';
import type { WorkflowMetrics } from './workflowMetrics';

type StepNext = Extract<NextStep, { kind: 'step' }>;

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
      const next = planNextStep(state);
      if (next.kind === 'done') {
        await this.mirror(state, next.status);
        await this.event(state, 'status', { status: next.status });
        await this.notify(state, `job.${next.status}`, `${state.jobId}-${next.status}`, { status: next.status });
        await this.metrics.portraitFinished(next.status, state.attempts.length);
        return { status: next.status };
      }
      if (!stepRecordOf(state, next)) {
        state = markStepQueued(state, next, Date.now());
        await this.enqueue(job, state, next);
        await this.mirror(state, 'running');
        await job.updateData(state);
        await this.step(state, { step: next.step, attempt: next.attempt ?? null, status: 'queued' });
      }
      if (await job.moveToWaitingChildren(token!)) throw new WaitingChildrenError();
      // Persisted together with the next step's enqueue: replaying this fold is idempotent.
      const outcome = await this.readOutcome(state, next);
      await this.metrics.stepFinished(next.step, outcome);
      state = applyStepOutcome(state, next, outcome);
      await this.step(state, { step: next.step, attempt: next.attempt ?? null, status: outcome.status });
    }
  };

  /**
   * A cancel request for a job whose step is still queued: the step is removed and detached, so the
   * parent wakes now and ends `cancelled` (a running step is aborted by the worker holding it).
   */
  async releaseQueuedStep(portraitJob: Job<PortraitState> | undefined): Promise<void> {
    if (!portraitJob) return;
    const state = PortraitState.parse(portraitJob.data);
    const next = planNextStep(state);
    const record = next.kind === 'step' ? stepRecordOf(state, next) : undefined;
    if (next.kind !== 'step' || !record) return;
    if (!(await releaseIfQueued(this.queues.get(next.step), record.stepJobId))) return;
    logger.info('queued step removed for a cancelled job', { jobId: state.jobId, stepJobId: record.stepJobId });
  }

  private async enqueue(parent: Job<PortraitState>, state: PortraitState, next: StepNext): Promise<void> {
    const record = stepRecordOf(state, next)!;
    const input = STEPS[next.step].input.parse(buildStepInput(state, next));
    await addStepJob(this.config, this.queues, parent, next.step, record.stepJobId, input);
    logger.debug('step queued', { step: next.step, attempt: next.attempt, stepJobId: record.stepJobId });
  }

  private async readOutcome(state: PortraitState, next: StepNext): Promise<StepOutcome> {
    return readStepOutcome(this.queues.get(next.step), stepRecordOf(state, next)!.stepJobId);
  }

  private async step(state: PortraitState, data: { step: StepName; attempt: number | null; status: string }): Promise<void> {
    await this.event(state, 'step', data);
    await this.notify(state, 'job.step', `${state.jobId}-a${data.attempt ?? 'r'}-${data.step}-${data.status}`, data);
  }

  private notify(state: PortraitState, type: WebhookEvent, id: string, data: Record<string, unknown>): Promise<void> {
    const event = { type, id, jobId: state.jobId, tenant: state.tenant ?? 'local', data: { job_id: state.jobId, ...data } };
    return queueWebhook(this.queues.get(NOTIFY_QUEUE), this.config, state.webhook, event);
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
          result: best ? { attempt: best.number, imageKey: best.images[0].key, score: best.verdict!.score } : null,
          ...(finished ? { finishedAt: new Date() } : {}),
        },
      },
    );
    if (finished) logger.info('portrait job finished', { status, attempts: state.attempts.length });
  }
}
