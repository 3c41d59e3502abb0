import http from 'node:http';
import https from 'node:https';
import { resolveOutboundTarget } from './outboundTarget';
import { sign } from './signature';

export type DeliveryResult = { status: number | null; error?: string; durationMs: number };

const IDLE_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * One signed POST of `body` to `url`, connecting to the address that passed the SSRF check (the
 * socket's DNS lookup is pinned to it; TLS still verifies the URL's host name). Redirects are not
 * followed: a 3xx is a failed delivery like any other non-2xx. The whole attempt (connecting,
 * sending, the answer's headers and body) has `deadlineMs`: a receiver that drips its answer a byte
 * at a time, never idle long enough for the idle timeout, is cut there and the attempt fails.
 */
export async function deliver(opts: {
  url: string;
  id: string;
  body: string;
  secret: string;
  allowPrivate: boolean;
  deadlineMs: number;
  now?: () => number;
}): Promise<DeliveryResult> {
  const started = Date.now();
  const target = await resolveOutboundTarget(opts.url, opts.allowPrivate);
  const timestamp = Math.floor((opts.now ?? Date.now)() / 1000);
  const url = new URL(opts.url);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<DeliveryResult>((resolve) => {
    let overdue = false;
    const deadline = setTimeout(() => {
      overdue = true;
      req.destroy(new Error(`no complete answer within ${opts.deadlineMs} ms`));
    }, Math.max(0, opts.deadlineMs - (Date.now() - started)));
    const finish = (result: Omit<DeliveryResult, 'durationMs'>) => {
      clearTimeout(deadline);
      resolve({ ...result, ...(overdue ? { status: null, error: `no complete answer within ${opts.deadlineMs} ms` } : {}), durationMs: Date.now() - started });
    };
    const req = client.request(
      url,
      {
        method: 'POST',
        timeout: Math.min(IDLE_TIMEOUT_MS, opts.deadlineMs),
        // Node 20's http asks with {all: true} and expects a list; either way only the checked address.
        lookup: (_host, options, callback) =>
          options.all ? callback(null, [{ address: target.address, family: target.family }]) : callback(null, target.address, target.family),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'apex-portraits-webhooks/1',
          'webhook-id': opts.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': sign(opts.secret, opts.id, timestamp, opts.body),
        },
      },
      (res) => {
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        res.on('close', () => finish({ status: res.statusCode ?? null }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no response within ${IDLE_TIMEOUT_MS} ms`)));
    req.on('error', (err) => finish({ status: null, error: err.message }));
    req.end(opts.body);
  });
}
