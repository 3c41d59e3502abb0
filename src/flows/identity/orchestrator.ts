import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { IdentityModel } from '../../store/identityModel';
import type { ObjectStore } from '../../store/objectStore';
import { TERMINAL_STATUSES, type IdentityStatus } from '../../store/statuses';
import { isCancelled } from '../cancellation';
import { IDENTITY_STEPS, type IdentityJobData, type IdentityStep } from '../contracts/identity';
import { stepJobId, webhookId } from '../ids';
import { addJobEvent } from '../jobEvents';
import { QueueName, type QueueSet } from '../queues';
import { checkOutcome, type StepError } from '../steps/outcomes';
import { releaseStep } from '../steps/stepJobs';
import { StepRunner } from '../steps/stepRunner';
import { asBullMQTransaction, type WorkflowTransaction } from '../steps/workflowTransaction';
import { queueWebhook } from '../webhooks/notify';
import type { WorkflowMetrics } from '../workflowMetrics';
import { embeddingsOf, rankPhotosByTypicality } from './bestPhotos';
import { foldResult, STATUS_OF_STEP, stepInput, stepTimeoutMs } from './stages';

type Ending = { status: Extract<IdentityStatus, 'ready' | 'failed' | 'cancelled'>; fields: Record<string, unknown> };

/**
 * Drives one identity through its steps (prepare → caption → train → evaluate), one GPU step job at
 * a time, with the step runner every workflow uses: the state lives in the BullMQ job's data, each
 * step is a child with a deterministic id (`<identityId>-<step>`) and a deadline, and the processor
 * parks until it ends. A step's outcome is folded into the Identity document first (an idempotent
 * $set), then the next step, the saved state, the events and the outcome's metrics go in one
 * transaction; a crash anywhere replays from the job's data and adds no step twice. A cancel ends it
 * `cancelled` once its running step has stopped (the worker aborts it between training steps).
 */
export class IdentityOrchestrator {
  private readonly runner: StepRunner;

  constructor(
    private readonly config: Config,
    private readonly connection: Redis,
    private readonly objects: ObjectStore,
    private readonly queues: QueueSet,
    metrics: WorkflowMetrics,
  ) {
    this.runner = new StepRunner(config, connection, metrics);
  }

  readonly process = async (job: Job<IdentityJobData>, token?: string): Promise<{ status: string }> => {
    const prefix = this.config.QUEUE_PREFIX;
    const workflowQueue = this.queues.get(QueueName.identity);
    let data = job.data;
    const { identityId } = data;
    /** The outcome folded last, announced (metrics, deadline cleared) with the transition that follows it. */
    let announce: ((tx: WorkflowTransaction) => void) | undefined;
    for (;;) {
      if (data.stage === IDENTITY_STEPS.length) return this.end(job, data, { status: 'ready', fields: {} }, announce);
      const step = IDENTITY_STEPS[data.stage];
      const stepQueue = this.queues.get(step);
      const stepId = stepJobId(identityId, step);
      if (!data.queued) {
        if (await isCancelled(this.connection, prefix, identityId)) return this.end(job, data, { status: 'cancelled', fields: {} }, announce);
        const status = STATUS_OF_STEP[step];
        const changed = data.stage === 0 || STATUS_OF_STEP[IDENTITY_STEPS[data.stage - 1]] !== status;
        // Never over an end: a replay of an ended identity's last activation must not revive it.
        if (changed) await IdentityModel.updateOne({ _id: identityId, status: { $nin: [...TERMINAL_STATUSES] } }, { $set: { status } });
        const tx = await this.runner.begin(workflowQueue);
        announce?.(tx);
        if (changed) addJobEvent(tx, prefix, identityId, 'status', { status });
        data = { ...data, queued: true };
        const queued = { tenant: data.tenant, step, queue: stepQueue, stepJobId: stepId, input: stepInput(step, data), timeoutMs: stepTimeoutMs(this.config, step) };
        await this.runner.queueStepAndPark(tx, { queue: workflowQueue, job, token: token!, data }, queued);
      }
      const [cancelledThen, finished] = await Promise.all([isCancelled(this.connection, prefix, identityId), this.runner.readOutcome(stepQueue, stepId)]);
      const outcome = finished ?? (await this.runner.waitForOutcome(job, token!, stepQueue, stepId));
      announce = (tx) => this.runner.foldOutcome(tx, data.tenant, step, stepQueue, stepId, outcome);
      // Read with the outcome when it was there; a step that ended just now may have ended by a cancel since.
      const cancelled = finished ? cancelledThen : await isCancelled(this.connection, prefix, identityId);
      if (cancelled) return this.end(job, data, { status: 'cancelled', fields: {} }, announce);
      const checked = checkOutcome(step, outcome);
      if (!checked.ok) return this.end(job, data, { status: 'failed', fields: { error: errorOf(checked.error, step) } }, announce);
      const folded = foldResult(step, data, checked.result);
      const fields = step === 'prepare_identity' ? { ...folded.fields, 'prepared.bestPhotos': await this.bestPhotos(folded.data) } : folded.fields;
      if (Object.keys(fields).length > 0) await IdentityModel.updateOne({ _id: identityId }, { $set: fields });
      data = folded.data;
    }
  };

  /** The photos' order of typicality (bestPhotos.ts), read from the embeddings prepare_identity wrote. */
  private async bestPhotos(data: IdentityJobData): Promise<number[]> {
    const json = await this.objects.getBuffer(data.prepared!.embeddingsKey);
    if (!json) throw new Error(`identity ${data.identityId}: its embeddings are missing`);
    return rankPhotosByTypicality(embeddingsOf(JSON.parse(json.toString('utf8'))));
  }

  /** The end: the document first (waited for), then the event, the webhook and the last outcome's metrics in one transaction. */
  private async end(job: Job<IdentityJobData>, data: IdentityJobData, { status, fields }: Ending, announce?: (tx: WorkflowTransaction) => void) {
    const { identityId } = data;
    await IdentityModel.updateOne({ _id: identityId, status: { $nin: [...TERMINAL_STATUSES] } }, { $set: { status, ...fields, finishedAt: new Date() } });
    const tx = await this.runner.begin(this.queues.get(QueueName.identity));
    announce?.(tx);
    addJobEvent(tx, this.config.QUEUE_PREFIX, identityId, 'status', { status, ...(fields.error ? { error: fields.error } : {}) });
    const event = { identity_id: identityId, status, ...(fields.error ? { error: fields.error } : {}) };
    await queueWebhook(this.queues.get(QueueName.notify), this.config, data.webhook, { type: `identity.${status}`, id: webhookId(identityId, status), jobId: identityId, tenant: data.tenant, data: event }, asBullMQTransaction(tx));
    await this.runner.commit(tx);
    logger.info('identity finished', { identityId, status });
    return { status };
  }

  /** A cancel request while a step is still queued: removed, so the workflow wakes now (a running one is aborted by its worker). */
  readonly releaseCancelled = async (identityId: string): Promise<void> => {
    for (const step of IDENTITY_STEPS) await releaseStep(this.queues.get(step), stepJobId(identityId, step), 'leave');
  };
}

const errorOf = (error: StepError, step: IdentityStep) => ({ ...error, step });
