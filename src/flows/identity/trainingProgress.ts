import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { stepJobId } from '../ids';
import { parseJobEvents } from '../jobEvents';
import type { QueueSet } from '../queues';
import { jobEventsKey } from '../redisKeys';

/** The losses a reader gets: the last this many reports (the event stream carries every one). */
const RECENT_LOSSES = 50;
/** Log entries read back to find them: progress reports among the other events. */
const LOG_WINDOW = 200;

export type TrainingProgress = { step: number; total: number; loss: number | null; recentLosses: number[]; etaSeconds: number | null };

/**
 * Where a running training stands, from what the worker reports (gpu-worker steps/train_identity.py):
 * the step job's progress (step, total, loss) and the identity's event log (each report's loss, for
 * the curve). The ETA assumes the pace of the recent reports goes on.
 */
export async function trainingProgress(redis: Redis, prefix: string, queues: QueueSet, identityId: string): Promise<TrainingProgress | null> {
  const job = await Job.fromId(queues.get('train_identity'), stepJobId(identityId, 'train_identity'));
  const progress = job?.progress as { step?: number; total?: number; loss?: number } | undefined;
  if (!job || typeof progress?.step !== 'number' || typeof progress.total !== 'number') return null;
  const entries = parseJobEvents((await redis.xrevrange(jobEventsKey(prefix, identityId), '+', '-', 'COUNT', LOG_WINDOW)) as [string, string[]][]);
  // The trainer's reports, newest first (other steps' progress and status events left out).
  const reports = entries.filter((e) => e.type === 'progress' && typeof e.data.train_step === 'number');
  const recentLosses = reports.filter((e) => typeof e.data.loss === 'number').slice(0, RECENT_LOSSES).reverse().map((e) => e.data.loss as number);
  // The pace of the reports in the window (stream ids are their times in ms): right after a resume too.
  const [newest, oldest] = [reports[0], reports.at(-1)];
  const stepsBetween = newest && oldest && newest !== oldest ? (newest.data.train_step as number) - (oldest.data.train_step as number) : 0;
  const pace = stepsBetween > 0 ? (Number(newest.id.split('-')[0]) - Number(oldest!.id.split('-')[0])) / 1000 / stepsBetween : null;
  return {
    step: progress.step,
    total: progress.total,
    loss: typeof progress.loss === 'number' ? progress.loss : null,
    recentLosses,
    etaSeconds: pace === null ? null : Math.round(pace * (progress.total - progress.step)),
  };
}
