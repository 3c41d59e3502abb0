import type { Config } from '../config';
import { WebhookSpec, type WebhookEvent } from '../flows/webhooks/events';
import { resolveOutboundTarget } from '../flows/webhooks/outboundTarget';
import { ApiError } from './errors';

/**
 * A request's webhook (url + events) checked for use: configured deployment, known events, and a
 * target that passes the SSRF check now (delivery checks it again). `fields` names the request
 * fields the errors point at (by default a JSON body's `webhook: {url, events}`).
 */
export async function checkWebhook(
  config: Config,
  raw: { url?: unknown; events?: unknown },
  defaults: WebhookEvent[],
  fields = { url: 'webhook.url', events: 'webhook.events' },
): Promise<WebhookSpec | undefined> {
  if (raw.url === undefined || raw.url === '') {
    if (raw.events !== undefined) throw new ApiError(400, 'invalid_webhook', `${fields.events} needs ${fields.url}`, fields.events);
    return undefined;
  }
  if (!config.WEBHOOK_SECRET) throw new ApiError(400, 'webhooks_disabled', 'this deployment has no WEBHOOK_SECRET, so it sends no webhooks', fields.url);
  const parsed = WebhookSpec.safeParse({ url: raw.url, events: raw.events ?? defaults });
  if (!parsed.success) {
    const field = parsed.error.issues[0].path[0] === 'events' ? fields.events : fields.url;
    throw new ApiError(400, 'invalid_webhook', `${field}: ${parsed.error.issues[0].message}`, field);
  }
  try {
    await resolveOutboundTarget(parsed.data.url, config.WEBHOOK_ALLOW_PRIVATE);
  } catch (err) {
    throw new ApiError(400, 'invalid_webhook', `${fields.url}: ${err instanceof Error ? err.message : String(err)}`, fields.url);
  }
  return parsed.data;
}
