import { type Job, type Queue } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { forgetPhotos } from '../../store/processedPhotoModel';
import { ScheduleModel, type ScheduleDocument } from '../../store/scheduleModel';
import type { BatchJobData, BatchTarget } from '../contracts/batch';
import type { ScheduleFireData, ScheduleRequest } from '../contracts/schedule';
import { batchCost } from '../fairness/gpuCost';
import { tenantLimits } from '../fairness/tenantLimits';
import { scheduleBatchId } from '../ids';
import { scheduleLockKey } from '../redisKeys';
import type { WebhookSpec } from '../webhooks/events';
import { scheduleScope } from './submission';
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

export type ScheduleDeps = { config: Config; redis: Redis; scheduleQueue: Queue<ScheduleFireData> };

/** How far ahead a schedule's firings are looked at: a week and a day, so weekly patterns are seen whole. */
const FIRING_HORIZON_S = 8 * 24 * 3600;
/** At most this many firings are looked at (cron-parser takes about 25 µs each): enough to see an hour's window fill at one firing a second. */
const MAX_FIRINGS_LOOKED_AT = 5000;

/**
 * The most times a cron fires within any `windowS` seconds over the next week and a day (a daily
 * 03:00 cron: 1; every minute: 60 per hour), looking at its next 5000 firings at most; counting
 * stops once the peak passes `stopAbove`.
 */
export function peakFiringsPerWindow(cron: string, tz: string, from: Date, windowS: number, stopAbove = Infinity): number {
  const expression = CronExpressionParser.parse(cron, { tz, strict: false, currentDate: from });
  const end = from.getTime() + FIRING_HORIZON_S * 1000;
  const times: number[] = [];
  let first = 0;
  let peak = 0;
  for (let t = expression.next().getTime(); t <= end && times.length < MAX_FIRINGS_LOOKED_AT && peak <= stopAbove; t = expression.next().getTime()) {
    times.push(t);
    while (times[first] <= t - windowS * 1000) first++;
    peak = Math.max(peak, times.length - first);
  }
  return peak;
}

/**
 * What a schedule's firings may cost in one GPU budget window (gpuCost.ts): its batch's cost times
 * its most firings in a window; once past `stopAbove` units it stops counting (it is refused anyway).
 */
export function scheduleWindowCost(config: Config, schedule: { cron: string; tz: string; target: BatchTarget }, stopAbove = Infinity, now = new Date()): number {
  const perFiring = batchCost(schedule.target, config.MAX_ATTEMPTS);
  return perFiring * peakFiringsPerWindow(schedule.cron, schedule.tz, now, config.GPU_BUDGET_WINDOW_S, perFiring > 0 ? stopAbove / perFiring : Infinity);
}

/** A schedule created, or why not: the tenant has its most schedules, or its schedules' firings would cost more than its GPU budget per window. */
export type ScheduleCreation = { created: true } | { created: false; reason: 'too_many' } | { created: false; reason: 'over_budget'; cost: number; committed: number; budget: number };

/**
 * The schedule document, then its BullMQ job scheduler (upserted: re-running is harmless). Nothing
 * is created when the tenant already has SCHEDULE_MAX_PER_TENANT schedules, or when this one's
 * firings in one GPU budget window, with its other schedules' (`committed`), would cost more than
 * its budget: counting and creating happen under the tenant's lock, so parallel requests cannot
 * pass either limit together.
 */
export async function createSchedule(deps: ScheduleDeps, schedule: { id: string; tenant: string; request: ScheduleRequest; webhook?: WebhookSpec }): Promise<ScheduleCreation> {
  const { id, tenant, request, webhook } = schedule;
  const lock = scheduleLockKey(deps.config.QUEUE_PREFIX, tenant);
  const budget = tenantLimits(deps.config, tenant).budgetUnits;
  // Reckoned before the lock (up to a tenth of a second for a cron firing every second); the others' were stored with them.
  const cost = scheduleWindowCost(deps.config, request, budget > 0 ? budget : Infinity);
  const creation = await underLock(deps.redis, lock, async (): Promise<ScheduleCreation> => {
    const others = await ScheduleModel.find({ tenant }, { cron: 1, tz: 1, target: 1, gpuUnitsPerWindow: 1 }).lean<Pick<ScheduleDocument, 'cron' | 'tz' | 'target' | 'gpuUnitsPerWindow'>[]>();
    if (others.length >= deps.config.SCHEDULE_MAX_PER_TENANT) return { created: false, reason: 'too_many' };
    if (budget > 0) {
      const committed = others.reduce((sum, other) => sum + (other.gpuUnitsPerWindow ?? scheduleWindowCost(deps.config, other as { cron: string; tz: string; target: BatchTarget })), 0);
      if (cost + committed > budget) return { created: false, reason: 'over_budget', cost, committed, budget };
    }
    await ScheduleModel.create({ _id: id, tenant, name: request.name, cron: request.cron, tz: request.tz, target: request.target, webhook, gpuUnitsPerWindow: cost });
    return { created: true };
  });
  if (!creation.created) return creation;
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
  return creation;
}

const LOCK_TTL_MS = 10_000;
const RELEASE_IF_OWNED = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";

/** Runs `fn` holding a Redis lock (expiring, so a crashed holder cannot keep it), waiting for it up to its TTL. */
async function underLock<T>(redis: Redis, key: string, fn: () => Promise<T>): Promise<T> {
  const token = randomUUID();
  const deadline = Date.now() + LOCK_TTL_MS;
  while ((await redis.set(key, token, 'PX', LOCK_TTL_MS, 'NX')) !== 'OK') {
    if (Date.now() > deadline) throw new Error(`lock ${key} still held after ${LOCK_TTL_MS} ms`);
    await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
  }
  try {
    return await fn();
  } finally {
    await redis.eval(RELEASE_IF_OWNED, 1, key, token);
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
    const batchId = scheduleBatchId(job.id!);
    const scheduleId = String(schedule._id);
    await submitBatch(deps, { id: batchId, tenant: schedule.tenant, target: schedule.target, scheduleId, webhook: schedule.webhook ?? undefined });
    await ScheduleModel.updateOne({ _id: scheduleId }, { $set: { lastFiredAt: new Date(), lastBatchId: batchId } });
    logger.info('schedule fired', { scheduleId, batchId });
    return { batchId };
  };
}
