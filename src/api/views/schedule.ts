import { z } from 'zod';
import { BatchTarget } from '../../flows/contracts/batch';
import { JobId } from '../../flows/contracts/common';
import { WebhookSpec } from '../../flows/webhooks/events';
import type { ScheduleDocument } from '../../store/scheduleModel';
import { iso, Timestamp } from './timestamp';

/** A schedule as callers see it, with its next run (from the scheduler) and its last. */
export const ScheduleView = z.object({
  schedule_id: JobId,
  name: z.string().nullable(),
  cron: z.string(),
  tz: z.string(),
  target: BatchTarget,
  webhook: WebhookSpec.nullable(),
  next_run_at: Timestamp,
  last_fired_at: Timestamp,
  last_batch_id: JobId.nullable(),
  batches_url: z.string().describe('the batches it started'),
  created_at: Timestamp,
});

export const ScheduleList = z.object({ schedules: z.array(ScheduleView) });

export type ScheduleView = z.output<typeof ScheduleView>;

export function scheduleView(doc: ScheduleDocument, nextRun: Date | null | undefined): ScheduleView {
  const id = doc._id.toHexString();
  return {
    schedule_id: id,
    name: doc.name ?? null,
    cron: doc.cron,
    tz: doc.tz,
    target: doc.target,
    webhook: doc.webhook ?? null,
    next_run_at: iso(nextRun),
    last_fired_at: iso(doc.lastFiredAt),
    last_batch_id: doc.lastBatchId ?? null,
    batches_url: `/batches?schedule_id=${id}`,
    created_at: iso(doc.createdAt),
  };
}
