import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Model } from 'mongoose';
import type { Config } from '../config';
import type { PortraitState } from '../flows/contracts/portraitState';
import { cancelChannel } from '../flows/cancellation';
import { BATCH_QUEUE, type BatchJobData } from '../flows/contracts/batch';
import { GENERATION_QUEUE } from '../flows/contracts/generation';
import { BatchOrchestrator } from '../flows/batches/orchestrator';
import { scheduleFireProcessor } from '../flows/batches/schedules';
import { BatchModel } from '../store/batchModel';
import { markUnfinishedFailed } from '../store/mongo';
import { ObjectStore } from '../store/objectStore';
import { GenerationOrchestrator, type GenerationJobData } from '../flows/generationOrchestrator';
import { PortraitOrchestrator } from '../flows/portraitOrchestrator';
import { GenerationModel } from '../store/generationModel';
import { ORCHESTRATOR_QUEUES, portraitJobId, QueueSet } from '../flows/queues';
import { logger } from '../logger';
import { WorkflowMetrics } from '../flows/workflowMetrics';
import { createStepTimeoutProcessor } from '../flows/stepTimeouts';
import { JobModel } from '../store/jobModel';
import { appendJobEvent } from '../flows/jobEvents';
import { connectRedis } from './redis';
import { startQueueWorkers } from './queueWorkers';

/**
 * Ends a job, generation or batch the orchestrator gave up on (the detail is in the log, the user
 * gets a safe message) and tells its event stream, whose listeners would otherwise wait forever.
 */
async function markOrchestrationFailed(connection: Redis, prefix: string, model: Model<any>, id: string, kind: string): Promise<void> {
  await markUnfinishedFailed(model, id, `the ${kind} could not be orchestrated after several retries; see the server logs`);
  await appendJobEvent(connection, prefix, id, 'status', { status: 'failed' });
}

/** The orchestrator role: portrait state machines, generations, batches, schedule firings and the step-timeout watchdog. */
export function startOrchestratorRole(config: Config, concurrency = config.ORCHESTRATOR_CONCURRENCY) {
  // Connections passed to BullMQ as instances stay ours to close.
  const connection = connectRedis(config.REDIS_URL);
  const workerConnection = connectRedis(config.REDIS_URL);
  const queues = new QueueSet(connection, config.QUEUE_PREFIX);
  const objects = ObjectStore.fromConfig(config);
  const metrics = new WorkflowMetrics(connection, config.QUEUE_PREFIX);
  const orchestrator = new PortraitOrchestrator(config, connection, queues, metrics);
  const generations = new GenerationOrchestrator(config, connection, queues, metrics);
  const batches = new BatchOrchestrator(config, connection, objects, queues);
  const workers = startQueueWorkers(
    [
      {
        queue: ORCHESTRATOR_QUEUES.portrait,
        processor: orchestrator.process,
        // The detail (a driver or Redis error) is in the log; the user gets a message safe to show.
        onFinalFailure: (job: Job<PortraitState>) => markOrchestrationFailed(connection, config.QUEUE_PREFIX, JobModel, job.data.jobId, 'job'),
      },
      {
        queue: GENERATION_QUEUE,
        processor: generations.process,
        onFinalFailure: (job: Job<GenerationJobData>) => markOrchestrationFailed(connection, config.QUEUE_PREFIX, GenerationModel, job.data.generationId, 'generation'),
      },
      {
        queue: BATCH_QUEUE,
        processor: batches.process,
        onFinalFailure: (job: Job<BatchJobData>) => markOrchestrationFailed(connection, config.QUEUE_PREFIX, BatchModel, job.data.batchId, 'batch'),
      },
      { queue: ORCHESTRATOR_QUEUES.schedule, processor: scheduleFireProcessor({ config, batchQueue: queues.get<BatchJobData>(BATCH_QUEUE) }), options: { concurrency: 5 } },
      { queue: ORCHESTRATOR_QUEUES.stepTimeouts, processor: createStepTimeoutProcessor(queues), options: { concurrency: 5 } },
    ],
    {
      connection: workerConnection,
      prefix: config.QUEUE_PREFIX,
      concurrency,
      lockDuration: config.ORCHESTRATOR_LOCK_MS,
      stalledInterval: config.ORCHESTRATOR_LOCK_MS,
      maxStalledCount: config.ORCHESTRATOR_MAX_STALLS,
    },
  );
  // Cancel requests: a job whose step is still queued is released here; the worker holding a
  // running step aborts it itself (every process listens on the same channel).
  const subscriber = connectRedis(config.REDIS_URL);
  void subscriber.subscribe(cancelChannel(config.QUEUE_PREFIX));
  subscriber.on('message', (_channel, jobId: string) => {
    JobModel.findById(jobId, { cycle: 1 })
      .lean<{ cycle?: number }>()
      .then((doc) => (doc ? queues.get<PortraitState>(ORCHESTRATOR_QUEUES.portrait).getJob(portraitJobId(jobId, doc.cycle ?? 1)) : undefined))
      .then((job) => orchestrator.releaseQueuedStep(job))
      .then(() => generations.releaseQueuedStep(jobId))
      .catch((err) => logger.warn('could not release a cancelled job', { jobId, error: String(err) }));
  });
  return {
    workers,
    /** Stops taking jobs, lets in-flight ones finish their current transition, closes connections. */
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      subscriber.disconnect();
      await queues.close();
      objects.client.destroy();
      connection.disconnect();
      workerConnection.disconnect();
    },
  };
}
