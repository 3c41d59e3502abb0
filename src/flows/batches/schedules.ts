import { type Job, type Queue } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { ScheduleModel, type ScheduleDocument } from '../../store/scheduleModel';
import type { BatchJobData } from '../contracts/batch';
import type { ScheduleFireData, ScheduleRequest } from '../contracts/schedule';
import { derivedId } from '../derivedId';
import { forgetPhotos } from '../../store/processedPhotoModel';
import { scheduleScope } from './submission';
import type { WebhookSpec } from '../webhooks/events';
import { submitBatch } from './submission';

/** Why a cron/time-zone pair is refused, or undefined when it is fine. */
export function checkCron(cron: string, tz: string, minIntervalS: number): { field: 'cron' | 'tz'; message: string } | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    return { field: 'tz', message: `unknown time zone "${tz}" (use an IANA name such as Europe/Berlin)` };
  }
  let fireTimes: number[];
  try {
    const expression = CronExpressionParser.parse(cron, { tz, strict: false });
    fireTimes = Array.from({ length: 6 }, () => expression.next().getTime());
  } catch (err) {
    return { field: 'cron', message: `not a cron pattern: ${(err as Error).message}` };
  }
  const shortest = Math.min(...fireTimes.slice(1).map((t, i) => t - fireTimes[i])) / 1000;
  if (shortest < minIntervalS) return { field: 'cron', message: `fires every ${shortest} s; the shortest interval allowed is ${minIntervalS} s` };
  return undefined;
}

export type ScheduleDeps = { config: Config; scheduleQueue: Queue<ScheduleFireData> };

/** The schedule document, then its BullMQ job scheduler (upserted: re-running is harmless). */
export async function createSchedule(deps: ScheduleDeps, schedule: { id: string; tenant: string; request: ScheduleRequest; webhook?: WebhookSpec }): Promise<void> {
  const { id, tenant, request, webhook } = schedule;
  await ScheduleModel.create({ _id: id, tenant, name: request.name, cron: request.cron, tz: request.tz, target: request.target, webhook });
  try {
    await deps.scheduleQueue.upsertJobScheduler(
      id,
      { pattern: request.cron, tz: request.tz },
      { name: 'fire', data: { scheduleId: id }, opts: { removeOnComplete: { count: 100 }, removeOnFail: { age: deps.config.STEP_RETENTION_S } } },
    );
  } catch (err) {
    await ScheduleModel.deleteOne({ _id: id });
    throw err;
  }
}

/** Stops the firings first, then forgets the schedule and the photos it took; batches it already started run on. */
export async function deleteSchedule(deps: ScheduleDeps, id: string): Promise<void> {
  await deps.scheduleQueue.removeJobScheduler(id);
  await ScheduleModel.deleteOne({ _id: id });
  await forgetPhotos(scheduleScope(id));
}

/** When it fires next (from its job scheduler), or null when it no longer fires. */
export async function nextFireTime(deps: ScheduleDeps, id: string): Promise<Date | null> {
  const scheduler = await deps.scheduleQueue.getJobScheduler(id);
  return scheduler?.next ? new Date(scheduler.next) : null;
}

/**
 * One firing: a batch with the schedule's target. Its id is derived from the firing's job id, so
 * a firing processed twice (a crash after submitting) starts one batch.
 */
export function scheduleFireProcessor(deps: { config: Config; batchQueue: Queue<BatchJobData> }) {
  return async (job: Job<ScheduleFireData>): Promise<{ batchId: string | null }> => {
    const schedule = await ScheduleModel.findById(job.data.scheduleId).lean<ScheduleDocument>();
    if (!schedule) return { batchId: null }; // deleted between the firing and now
    const batchId = derivedId('schedule-firing', job.id!);
    const scheduleId = String(schedule._id);
    await submitBatch(deps, { id: batchId, tenant: schedule.tenant, target: schedule.target, scheduleId, webhook: schedule.webhook ?? undefined });
    await ScheduleModel.updateOne({ _id: scheduleId }, { $set: { lastFiredAt: new Date(), lastBatchId: batchId } });
    logger.info('schedule fired', { scheduleId, batchId });
    return { batchId };
  };
}
