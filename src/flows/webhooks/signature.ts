import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signatures (standardwebhooks.com): the secret is `whsec_<base64 key>`, the
 * signed content is `<webhook-id>.<webhook-timestamp>.<body>`, and `webhook-signature` carries
 * `v1,<base64 HMAC-SHA256>` (space-separated when several keys are valid during a rotation).
 */
function key(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret, 'base64');
}

export function sign(secret: string, id: string, timestamp: number, body: string): string {
  return `v1,${createHmac('sha256', key(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** What a receiver does: recompute and compare in constant time; stale timestamps are replays. */
export function verify(secret: string, headers: Record<string, string | undefined>, body: string, toleranceS = 300): boolean {
  const id = headers['webhook-id'];
  const timestamp = Number(headers['webhook-timestamp']);
  const signatures = (headers['webhook-signature'] ?? '').split(' ');
  if (!id || !Number.isFinite(timestamp) || Math.abs(Date.now() / 1000 - timestamp) > toleranceS) return false;
  const expected = Buffer.from(sign(secret, id, timestamp, body));
  return signatures.some((s) => s.length === expected.length && timingSafeEqual(Buffer.from(s), expected));
}
