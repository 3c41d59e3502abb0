import { z } from 'zod';
import { JobId } from '../../flows/contracts/common';
import { WEBHOOK_EVENTS } from '../../flows/webhooks/events';
import { iso, Timestamp } from './timestamp';

/** One delivery attempt of one webhook, as the notifier recorded it. */
export const DeliveryView = z.object({
  webhook_id: z.string(),
  type: z.enum(WEBHOOK_EVENTS),
  url: z.string(),
  attempt: z.number().int(),
  status: z.number().int().nullable().describe('the HTTP status the receiver answered; null when it could not be reached'),
  error: z.string().nullable(),
  duration_ms: z.number(),
  at: Timestamp,
});

export type DeliveryOwner = 'job' | 'generation' | 'batch' | 'identity';

/** GET /{jobs|generations|batches}/{id}/deliveries: every attempt for the resource, oldest first. */
export const deliveryList = (owner: DeliveryOwner) => z.object({ [`${owner}_id`]: JobId, deliveries: z.array(DeliveryView) });

export type DeliveryView = z.output<typeof DeliveryView>;

/** A delivery record as stored (store/webhookDeliveryModel.ts). */
export type StoredDelivery = { webhookId: string; type: string; url: string; attempt: number; status: number | null; error?: string | null; durationMs: number; createdAt?: Date };

export function deliveryListView(owner: DeliveryOwner, id: string, deliveries: StoredDelivery[]): { deliveries: DeliveryView[] } & Record<string, unknown> {
  return {
    [`${owner}_id`]: id,
    deliveries: deliveries.map((d) => ({
      webhook_id: d.webhookId, type: d.type as DeliveryView['type'], url: d.url, attempt: d.attempt, status: d.status, error: d.error ?? null,
      duration_ms: d.durationMs, at: iso(d.createdAt),
    })),
  };
}
