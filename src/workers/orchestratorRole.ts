import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Model } from 'mongoose';
import type { Config } from '../config';
import { BatchOrchestrator } from '../flows/batches/orchestrator';
import { scheduleFireProcessor } from '../flows/batches/schedules';
import { listenForCancels } from '../flows/cancellation';
import { replayErasureLog } from '../flows/erasure/erasureReplay';
import { startPendingErasureSweeper } from '../flows/erasure/pendingErasures';
import { retentionProcessor, scheduleRetention } from '../flows/erasure/retention';
import type { ErasureDeps } from '../flows/erasure/erasureTarget';
import { logger } from '../logger';
import type { BatchJobData } from '../flows/contracts/batch';
import type { GenerationJobData } from '../flows/contracts/generation';
import type { PortraitState } from '../flows/contracts/portraitState';
import { GenerationOrchestrator } from '../flows/generation/orchestrator';
import type { IdentityJobData } from '../flows/contracts/identity';
import { IdentityOrchestrator } from '../flows/identity/orchestrator';
import { appendJobEvent } from '../flows/jobEvents';
import { PortraitOrchestrator } from '../flows/portrait/orchestrator';
import { QueueName, QueueSet } from '../flows/queues';
import { startStepDeadlineSweeper } from '../flows/steps/stepDeadlines';
import { releaseStep } from '../flows/steps/stepJobs';
import { WorkflowMetrics } from '../flows/workflowMetrics';
import { connectRedis } from '../redis';
import { BatchModel } from '../store/batchModel';
import { GenerationModel } from '../store/generationModel';
import { IdentityModel } from '../store/identityModel';
import { JobModel } from '../store/jobModel';
import { markUnfinishedFailed } from '../store/mongo';
import { ObjectStore } from '../store/objectStore';
import { startQueueWorkers } from './queueWorkers';

/**
 * Ends a job, generation or batch the orchestrator gave up on (the detail is in the log, the user
 * gets a safe message) and tells its event stream, whose listeners would otherwise wait forever.
 */
async function markOrchestrationFailed(connection: Redis, prefix: string, model: Model<any>, id: string, kind: string): Promise<void> {
  await markUnfinishedFailed(model, id, `the ${kind} could not be orchestrated after several retries; see the server logs`);
  // An erased resource stays erased: no event stream is started again for it.
  if (await model.exists({ _id: id })) await appendJobEvent(connection, prefix, id, 'status', { status: 'failed' });
}

/**
 * The orchestrator role: portrait state machines, generations, batches, identities, schedule firings, the step
 * watchdog, and people's data: the retention sweep, erasures still to finish, and at start the
 * erasure log's replay (`erasureReplay`: done once it resolves).
 */
export function startOrchestratorRole(config: Config, concurrency = config.ORCHESTRATOR_CONCURRENCY) {
  // Connections passed to BullMQ as instances stay ours to close.
  const connection = connectRedis(config.REDIS_URL);
  const workerConnection = connectRedis(config.REDIS_URL);
  const queues = new QueueSet(connection, config.QUEUE_PREFIX);
  const objects = ObjectStore.fromConfig(config);
  const metrics = new WorkflowMetrics(config.QUEUE_PREFIX);
  const orchestrator = new PortraitOrchestrator(config, connection, queues, metrics);
  const generations = new GenerationOrchestrator(config, connection, queues, metrics);
  const batches = new BatchOrchestrator(config, connection, objects, queues, metrics);
  const identities = new IdentityOrchestrator(config, connection, objects, queues, metrics);
  const erasure: ErasureDeps = { config, redis: connection, objects, queues };
  const workers = startQueueWorkers(
    [
      {
        queue: QueueName.portrait,
        processor: orchestrator.process,
        // The detail (a driver or Redis error) is in the log; the user gets a message safe to show.
        onFinalFailure: (job: Job<PortraitState>) => markOrchestrationFailed(connection, config.QUEUE_PREFIX, JobModel, job.data.jobId, 'job'),
      },
      {
        queue: QueueName.generation,
        processor: generations.process,
        onFinalFailure: (job: Job<GenerationJobData>) => markOrchestrationFailed(connection, config.QUEUE_PREFIX, GenerationModel, job.data.generationId, 'generation'),
      },
      {
        queue: QueueName.batch,
        processor: batches.process,
        onFinalFailure: (job: Job<BatchJobData>) => markOrchestrationFailed(connection, config.QUEUE_PREFIX, BatchModel, job.data.batchId, 'batch'),
      },
      {
        queue: QueueName.identity,
        processor: identities.process,
        onFinalFailure: (job: Job<IdentityJobData>) => markOrchestrationFailed(connection, config.QUEUE_PREFIX, IdentityModel, job.data.identityId, 'identity'),
      },
      { queue: QueueName.schedule, processor: scheduleFireProcessor({ config, batchQueue: queues.get(QueueName.batch) }), options: { concurrency: 5 } },
      { queue: QueueName.retention, processor: retentionProcessor(erasure), options: { concurrency: 1 } },
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
  const cancels = listenForCancels(config.REDIS_URL, config.QUEUE_PREFIX, [orchestrator.releaseCancelled, generations.releaseCancelled, identities.releaseCancelled]);
  const watchdog = startStepDeadlineSweeper(connection, config.QUEUE_PREFIX, config.STEP_TIMEOUT_MS, (queue, stepJobId) =>
    releaseStep(queues.get(queue), stepJobId, 'detach'),
  );
  const retentionScheduled = scheduleRetention(queues.get(QueueName.retention), config).catch((err) =>
    logger.error('could not schedule the retention sweep', { error: String(err) }),
  );
  // A failed replay is loud but not fatal: the next orchestrator start replays the whole log again.
  const erasureReplay = replayErasureLog(erasure).catch((err) => {
    logger.error('could not replay the erasure log', { error: String(err) });
    return undefined;
  });
  const pendingErasures = startPendingErasureSweeper(erasure);
  return {
    workers,
    erasureReplay,
    /** Stops taking jobs, lets in-flight ones finish their current transition, closes connections. */
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await watchdog.close();
      await pendingErasures.close();
      await retentionScheduled;
      await erasureReplay;
      cancels.close();
      await queues.close();
      objects.client.destroy();
      connection.disconnect();
      workerConnection.disconnect();
    },
  };
}
