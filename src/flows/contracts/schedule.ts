import { z } from 'zod';
import { BatchTarget } from './batch';

/** POST /schedules: a cron pattern (5 fields, or 6 with seconds) in a time zone, and the batch each firing runs. */
export const ScheduleRequest = z.strictObject({
  name: z.string().min(1).max(100).optional(),
  cron: z.string().min(1).max(120),
  tz: z.string().min(1).max(64).default('UTC'),
  target: BatchTarget,
});
export type ScheduleRequest = z.infer<typeof ScheduleRequest>;

export type ScheduleFireData = { scheduleId: string };
