import type { Job } from 'bullmq';
import type { Config } from '../config';
import type { PortraitState } from '../flows/contracts/portraitState';
import { PortraitOrchestrator } from '../flows/portraitOrchestrator';
import { ORCHESTRATOR_QUEUES } from '../flows/queues';
import { createStepTimeoutProcessor } from '../flows/stepTimeouts';
import { markJobFailed } from '../store/jobModel';
import { connectRedis } from './redis';
import { startQueueWorkers } from './queueWorkers';

/** The orchestrator role: portrait state machines and the step-timeout watchdog. */
export function startOrchestratorRole(config: Config, concurrency = config.ORCHESTRATOR_CONCURRENCY) {
  // Connections passed to BullMQ as instances stay ours to close.
  const connection = connectRedis(config.REDIS_URL);
  const workerConnection = connectRedis(config.REDIS_URL);
  const orchestrator = new PortraitOrchestrator(config, connection);
  const timeouts = createStepTimeoutProcessor(connection, config.QUEUE_PREFIX);
  const workers = startQueueWorkers(
    [
      {
        queue: ORCHESTRATOR_QUEUES.portrait,
        processor: orchestrator.process,
        // The detail (a driver or Redis error) is in the log; the user gets a message safe to show.
        onFinalFailure: (job: Job<PortraitState>) =>
          markJobFailed(job.data.jobId, 'the job could not be orchestrated after several retries; see the server logs'),
      },
      { queue: ORCHESTRATOR_QUEUES.stepTimeouts, processor: timeouts.process, options: { concurrency: 5 } },
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
  return {
    workers,
    /** Stops taking jobs, lets in-flight ones finish their current transition, closes connections. */
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      await Promise.all([orchestrator.close(), timeouts.close()]);
      connection.disconnect();
      workerConnection.disconnect();
    },
  };
}
