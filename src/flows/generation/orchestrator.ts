import { Job, WaitingChildrenError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config';
import { logger } from '../logger';
import { GenerationModel } from '../store/generationModel';
import { isCancelled } from './cancellation';
import type { TraceCarrier } from './contracts/common';
import { GenerateStepInput } from './contracts/generate';
import { appendJobEvent } from './jobEvents';
import type { QueueSet } from './queues';
import { addStepJob, readStepOutcome, releaseIfQueued } from './stepJobs';
import { STEPS } from './steps';
import { NOTIFY_QUEUE, type WebhookSpec } from './webhooks/events';
import { queueWebhook } from './webhooks/notify';
import type { WorkflowMetrics } from './workflowMetrics';

export type GenerationJobData = { generationId: string; tenant?: string; webhook?: WebhookSpec; input: GenerateStepInput; queued?: boolean; trace?: TraceCarrier };

/**
 * The generation workflow: one `generate` step as a child job (the same queue and worker the
 * portrait attempts use), its outcome mirrored into the Generation document. The step's payload
 * carries the sealed secrets; nothing here opens them.
 */
export class GenerationOrchestrator {
  constructor(
    private readonly config: Config,
    private readonly connection: Redis,
    private readonly queues: QueueSet,
    private readonly metrics: WorkflowMetrics,
  ) {}

  static stepId = (generationId: string) => `${generationId}-generate`;

  readonly process = async (job: Job<GenerationJobData>, token?: string): Promise<{ status: string }> => {
    const { generationId, input } = job.data;
    const stepId = GenerationOrchestrator.stepId(generationId);
    if (!job.data.queued && !(await isCancelled(this.connection, this.config.QUEUE_PREFIX, generationId))) {
      await addStepJob(this.config, this.queues, job, 'generate', stepId, STEPS.generate.input.parse(input));
      await GenerationModel.updateOne({ _id: generationId }, { $set: { status: 'running' } });
      await job.updateData({ ...job.data, queued: true });
      await this.event(generationId, { status: 'running' });
    }
    if (await job.moveToWaitingChildren(token!)) throw new WaitingChildrenError();
    const outcome = await readStepOutcome(this.queues.get('generate'), stepId);
    await this.metrics.stepFinished('generate', outcome);
    let status: 'completed' | 'failed' | 'cancelled';
    let fields: Record<string, unknown>;
    if (await isCancelled(this.connection, this.config.QUEUE_PREFIX, generationId)) {
      status = 'cancelled';
      fields = {};
    } else if (outcome.status === 'completed') {
      const result = STEPS.generate.result.safeParse(outcome.value);
      status = result.success ? 'completed' : 'failed';
      fields = result.success
        ? { images: result.data.images, timings: result.data.timings }
        : { error: { code: 'invalid_step_result', message: result.error.issues[0].message } };
    } else {
      status = 'failed';
      fields = outcome.status === 'failed'
        ? { error: { code: 'step_failed', message: `generate step failed: ${outcome.reason}` } }
        : { error: { code: 'step_timed_out', message: 'generate step did not finish in time' } };
    }
    await GenerationModel.updateOne({ _id: generationId }, { $set: { status, ...fields, finishedAt: new Date() } });
    await this.event(generationId, { status });
    await queueWebhook(this.queues.get(NOTIFY_QUEUE), this.config, job.data.webhook, {
      type: `generation.${status}`,
      id: `${generationId}-${status}`,
      jobId: generationId,
      tenant: job.data.tenant ?? 'local',
      data: { generation_id: generationId, status },
    });
    logger.info('generation finished', { generationId, status });
    return { status };
  };

  /** A cancel request while the step is still queued: remove it so the parent wakes now. */
  async releaseQueuedStep(generationId: string): Promise<void> {
    await releaseIfQueued(this.queues.get('generate'), GenerationOrchestrator.stepId(generationId));
  }

  private event(generationId: string, data: Record<string, unknown>) {
    return appendJobEvent(this.connection, this.config.QUEUE_PREFIX, generationId, 'status', data);
  }
}
