import { z } from 'zod';
import { BatchTarget, BatchWebhook } from './batch';

/** POST /schedules: a cron pattern (5 fields, or 6 with seconds) in a time zone, and the batch each firing runs. */
export const ScheduleRequest = z.strictObject({
  name: z.string().min(1).max(100).optional(),
  cron: z.string().min(1).max(120),
  tz: z.string().min(1).max(64).default('UTC'),
  target: BatchTarget,
  /** Each batch the schedule starts notifies this webhook when it ends. */
  webhook: BatchWebhook,
});
export type ScheduleRequest = z.infer<typeof ScheduleRequest>;

export type ScheduleFireData = { scheduleId: string };
