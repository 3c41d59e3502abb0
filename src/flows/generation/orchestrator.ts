import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { GenerationModel } from '../../store/generationModel';
import type { GenerationStatus } from '../../store/statuses';
import { isCancelled } from '../cancellation';
import type { GenerationJobData } from '../contracts/generation';
import { stepJobId, webhookId } from '../ids';
import { addJobEvent } from '../jobEvents';
import { QueueName, type QueueSet } from '../queues';
import { checkOutcome } from '../steps/outcomes';
import { STEPS } from '../steps/registry';
import { releaseStep } from '../steps/stepJobs';
import { StepRunner } from '../steps/stepRunner';
import { asBullMQTransaction } from '../steps/workflowTransaction';
import { queueWebhook } from '../webhooks/notify';
import type { WorkflowMetrics } from '../workflowMetrics';

/**
 * The generation workflow: one `generate` step as a child job (on the text-to-image pool's queue;
 * portraits render on their own), its outcome written into the Generation document. The step's
 * payload carries the sealed secrets; nothing here opens them. Its transitions go through the step
 * runner, as the portrait's do: the child, its deadline, the job data and the parking in one
 * transaction; the outcome and the cancel flag read in one round trip.
 */
export class GenerationOrchestrator {
  private readonly runner: StepRunner;

  constructor(
    private readonly config: Config,
    private readonly connection: Redis,
    private readonly queues: QueueSet,
    metrics: WorkflowMetrics,
  ) {
    this.runner = new StepRunner(config, connection, metrics);
  }

  readonly process = async (job: Job<GenerationJobData>, token?: string): Promise<{ status: string }> => {
    const { generationId, input } = job.data;
    const prefix = this.config.QUEUE_PREFIX;
    const stepQueue = this.queues.get(QueueName.generate);
    const stepId = stepJobId(generationId, 'generate');
    if (!job.data.queued && !(await isCancelled(this.connection, prefix, generationId))) {
      // Within the activation, before parking, so it never races the final write (on FerretDB, one
      // of two concurrent updates can be lost); only from pending, so a replay never undoes an end.
      await GenerationModel.updateOne({ _id: generationId, status: 'pending' }, { $set: { status: 'running' } });
      const generationQueue = this.queues.get(QueueName.generation);
      const tx = await this.runner.begin(generationQueue);
      addJobEvent(tx, prefix, generationId, 'status', { status: 'running' });
      const step = { tenant: job.data.tenant ?? 'local', step: 'generate' as const, queue: stepQueue, stepJobId: stepId, input: STEPS.generate.input.parse(input) };
      await this.runner.queueStepAndPark(tx, { queue: generationQueue, job, token: token!, data: { ...job.data, queued: true } }, step);
    }
    const [cancelled, finished] = await Promise.all([isCancelled(this.connection, prefix, generationId), this.runner.readOutcome(stepQueue, stepId)]);
    const outcome = finished ?? (await this.runner.waitForOutcome(job, token!, stepQueue, stepId));
    const checked = checkOutcome('generate', outcome);
    let status: GenerationStatus;
    let fields: Record<string, unknown>;
    if (cancelled) {
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
    const tx = await this.runner.begin(this.queues.get(QueueName.generation));
    this.runner.foldOutcome(tx, job.data.tenant ?? 'local', 'generate', stepQueue, stepId, outcome);
    addJobEvent(tx, prefix, generationId, 'status', { status });
    const event = { generation_id: generationId, status };
    const type = `generation.${status as 'completed' | 'failed' | 'cancelled'}` as const;
    await queueWebhook(this.queues.get(QueueName.notify), this.config, job.data.webhook, { type, id: webhookId(generationId, status), jobId: generationId, tenant: job.data.tenant ?? 'local', data: event }, asBullMQTransaction(tx));
    await this.runner.commit(tx);
    logger.info('generation finished', { generationId, status });
    return { status };
  };

  /** A cancel request (cancellation.ts) while the step is still queued: remove it so the parent wakes now. */
  readonly releaseCancelled = async (generationId: string): Promise<void> => {
    await releaseStep(this.queues.get(QueueName.generate), stepJobId(generationId, 'generate'), 'leave');
  };
}
