import { Worker, type Job, type Processor, type WorkerOptions } from 'bullmq';
import { logger, withLogContext } from '../logger';
import { inJobSpan } from '../telemetry';

export type QueueHandler = {
  queue: string;
  processor: Processor;
  options?: Partial<WorkerOptions>;
  /** Called once a job has failed for good (no retries left). */
  onFinalFailure?: (job: Job, error: Error) => Promise<void>;
};

/**
 * Starts one BullMQ Worker per handler. Every processor is wrapped once here: its log lines carry
 * the job id, it runs in a span continuing the job's trace, and failures are logged, instead of
 * repeating that in each handler. Two handlers for one queue is a boot error, not a silent race.
 */
export function startQueueWorkers(handlers: QueueHandler[], base: WorkerOptions): Worker[] {
  const seen = new Set<string>();
  for (const h of handlers) {
    if (seen.has(h.queue)) throw new Error(`queue "${h.queue}" has more than one handler`);
    seen.add(h.queue);
  }
  return handlers.map((h) => {
    const processor: Processor = (job, token, signal) =>
      withLogContext({ queue: h.queue, bullJobId: job.id, jobId: job.data?.jobId }, () =>
        inJobSpan(`${h.queue} process`, job.data?.trace, { 'bullmq.queue': h.queue, 'bullmq.job_id': job.id ?? '', 'apex.job_id': job.data?.jobId ?? '' }, () =>
          h.processor(job, token, signal),
        ),
      );
    const worker = new Worker(h.queue, processor, { ...base, ...h.options });
    worker.on('failed', (job, error) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1) || error.name === 'UnrecoverableError';
      withLogContext({ queue: h.queue, bullJobId: job.id, jobId: job.data?.jobId }, () => {
        logger.error('job failed', { error: error.message, attemptsMade: job.attemptsMade, final });
      });
      if (final && h.onFinalFailure) {
        h.onFinalFailure(job, error).catch((e) => logger.error('final-failure handler failed', { error: String(e) }));
      }
    });
    worker.on('error', (error) => logger.error('worker error', { queue: h.queue, error: error.message }));
    return worker;
  });
}
