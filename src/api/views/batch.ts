import { z } from 'zod';
import { childStatuses, countByStatus } from '../../flows/batches/progress';
import { BatchTarget } from '../../flows/contracts/batch';
import { JobId, S3Key } from '../../flows/contracts/common';
import type { BatchDocument } from '../../store/batchModel';
import { BATCH_STATUSES } from '../../store/statuses';
import { ENDING_FIELDS } from './ending';
import { pageOf } from './page';
import { iso } from './timestamp';

const ChildKind = z.enum(['portrait', 'generation']);
const Counts = z.record(z.string(), z.number().int()).describe('children per status');
/** A child's error as its own document holds it (a job's or a generation's). */
const ChildError = z.looseObject({ code: z.string().optional(), message: z.string().optional() });

const BatchItemView = z.object({
  kind: ChildKind,
  id: JobId,
  url: z.string(),
  status: z.string(),
  source_key: S3Key.optional().describe('the inbox photo a portrait was made from'),
});

/** Written once every child has ended. */
const BatchSummary = z.object({
  total: z.number().int(),
  counts: Counts,
  skipped: z.number().int(),
  success_rate: z.number().nullable(),
  duration_s: z.number(),
  unsuccessful: z.array(z.object({ id: JobId, kind: ChildKind, status: z.string(), error: ChildError.nullable() })),
});

/** A batch as callers see it; `counts` and each item's status are read live from the children. */
export const BatchView = z.object({
  batch_id: JobId,
  status: z.enum(BATCH_STATUSES),
  schedule_id: JobId.nullable(),
  target: BatchTarget,
  total: z.number().int(),
  counts: Counts,
  items: z.array(BatchItemView).optional().describe('GET /batches/{id} only'),
  skipped: z.array(z.object({ key: S3Key, reason: z.string() })).describe('inbox photos turned down, and why'),
  summary: BatchSummary.nullable(),
  ...ENDING_FIELDS,
});

export const BatchList = pageOf('batches', BatchView);

/** POST /batches and its replay. */
export const BatchAccepted = z.object({ batch_id: JobId, status: z.literal('pending') });

/** POST /batches/:id/cancel. */
export const BatchCancelling = z.object({ batch_id: JobId, status: z.literal('cancelling'), children_cancelled: z.number().int() });

export type BatchView = z.output<typeof BatchView>;

export async function batchView(doc: BatchDocument, withItems: boolean): Promise<BatchView> {
  const children = await childStatuses(doc.items);
  return {
    batch_id: doc._id.toHexString(),
    status: doc.status,
    schedule_id: doc.scheduleId ?? null,
    target: doc.target,
    total: children.length,
    counts: countByStatus(children),
    ...(withItems
      ? {
          items: children.map((c, i) => ({
            kind: c.kind,
            id: c.id,
            url: c.kind === 'portrait' ? `/jobs/${c.id}` : `/generations/${c.id}`,
            status: c.status,
            ...(doc.items[i].source ? { source_key: doc.items[i].source!.key } : {}),
          })),
        }
      : {}),
    skipped: doc.skipped,
    summary: doc.summary ?? null,
    error: doc.error ?? null,
    created_at: iso(doc.createdAt),
    finished_at: iso(doc.finishedAt),
  };
}
