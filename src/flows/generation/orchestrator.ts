import { Job, WaitingChildrenError } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { GenerationModel } from '../../store/generationModel';
import type { GenerationStatus } from '../../store/statuses';
import { isCancelled } from '../cancellation';
import type { GenerationJobData } from '../contracts/generation';
import { stepJobId, webhookId } from '../ids';
import { appendJobEvent } from '../jobEvents';
import { QueueName, type QueueSet } from '../queues';
import { checkOutcome } from '../steps/outcomes';
import { STEPS } from '../steps/registry';
import { addStepJob, readStepOutcome, releaseStep } from '../steps/stepJobs';
import { queueWebhook } from '../webhooks/notify';
import type { WorkflowMetrics } from '../workflowMetrics';

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

  readonly process = async (job: Job<GenerationJobData>, token?: string): Promise<{ status: string }> => {
    const { generationId, input } = job.data;
    const stepId = stepJobId(generationId, 'generate');
    if (!job.data.queued && !(await isCancelled(this.connection, this.config.QUEUE_PREFIX, generationId))) {
      await addStepJob(this.config, this.queues, job, 'generate', stepId, STEPS.generate.input.parse(input));
      await GenerationModel.updateOne({ _id: generationId }, { $set: { status: 'running' } });
      await job.updateData({ ...job.data, queued: true });
      await this.event(generationId, { status: 'running' });
    }
    if (await job.moveToWaitingChildren(token!)) throw new WaitingChildrenError();
    const outcome = await readStepOutcome(this.queues.get(QueueName.generate), stepId);
    await this.metrics.stepFinished('generate', outcome);
    const checked = checkOutcome('generate', outcome);
    let status: GenerationStatus;
    let fields: Record<string, unknown>;
    if (await isCancelled(this.connection, this.config.QUEUE_PREFIX, generationId)) {
      status = 'cancelled';
      fields = {};
    } else if (checked.ok) {
      status = 'completed';
      fields = { images: checked.result.images, timings: checked.result.timings, ...(checked.result.pixels ? { pixels: checked.result.pixels } : {}) };
    } else {
      status = 'failed';
      fields = { error: checked.error };
    }
    await GenerationModel.updateOne({ _id: generationId }, { $set: { status, ...fields, finishedAt: new Date() } });
    await this.event(generationId, { status });
    await queueWebhook(this.queues.get(QueueName.notify), this.config, job.data.webhook, {
      type: `generation.${status as 'completed' | 'failed' | 'cancelled'}`,
      id: webhookId(generationId, status),
      jobId: generationId,
      tenant: job.data.tenant ?? 'local',
      data: { generation_id: generationId, status },
    });
    logger.info('generation finished', { generationId, status });
    return { status };
  };

  /** A cancel request (cancellation.ts) while the step is still queued: remove it so the parent wakes now. */
  readonly releaseCancelled = async (generationId: string): Promise<void> => {
    await releaseStep(this.queues.get(QueueName.generate), stepJobId(generationId, 'generate'), 'leave');
  };

  private event(generationId: string, data: Record<string, unknown>) {
    return appendJobEvent(this.connection, this.config.QUEUE_PREFIX, generationId, 'status', data);
  }
}
