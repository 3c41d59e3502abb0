import type { Request, RequestHandler, Response } from 'express';
import type { Config } from '../config';
import { ApiError } from './errors';

export type UploadLimits = {
  /** Uploads received and decoded at once, and waiting for a place, in this process. */
  concurrency: number;
  queue: number;
  /** One tenant's share of each (default: half of each, at least one of each there is). */
  perTenant?: { concurrency?: number; queue?: number };
  retryAfterS?: number;
};

/** Whose upload a request is: the authenticated tenant (auth.ts), else the client's address. */
const defaultTenantOf = (req: Request, res: Response): string => (res.locals.caller as { tenant?: string } | undefined)?.tenant ?? `ip:${req.ip}`;

/**
 * Back-pressure for uploads: at most `concurrency` requests of a route are received and decoded at
 * once per process, `queue` more wait their turn, and beyond that the caller gets 503 with
 * Retry-After at once. So a burst of uploads cannot starve /health, reads and event streams of the
 * event loop and the decoder threads, and memory stays bounded (concurrency × the files a request
 * may carry × MAX_UPLOAD_BYTES).
 *
 * The places are shared fairly: one tenant holds at most its share of them (`perTenant`), so its
 * slow clients, however many, leave the other places to other tenants; a freed place goes to the
 * oldest waiting upload whose tenant is under its share, and a tenant already waiting its share gets
 * 429 (its own limit, not the server's).
 */
export function uploadGate(limits: UploadLimits, tenantOf: (req: Request, res: Response) => string = defaultTenantOf): RequestHandler {
  const tenantConcurrency = limits.perTenant?.concurrency ?? Math.max(1, Math.floor(limits.concurrency / 2));
  const tenantQueue = limits.perTenant?.queue ?? Math.min(limits.queue, Math.max(1, Math.floor(limits.queue / 2)));
  const retryAfter = String(limits.retryAfterS ?? 2);
  let active = 0;
  const activeOf = new Map<string, number>();
  const waiting: { tenant: string; enter: () => void }[] = [];
  const count = (map: Map<string, number>, tenant: string, by: number) => {
    const n = (map.get(tenant) ?? 0) + by;
    if (n === 0) map.delete(tenant);
    else map.set(tenant, n);
  };
  const waitingOf = (tenant: string) => waiting.filter((w) => w.tenant === tenant).length;
  const hasPlace = (tenant: string) => active < limits.concurrency && (activeOf.get(tenant) ?? 0) < tenantConcurrency;
  const take = (tenant: string) => {
    active += 1;
    count(activeOf, tenant, 1);
  };
  const release = (tenant: string) => {
    active -= 1;
    count(activeOf, tenant, -1);
    const next = waiting.findIndex((w) => hasPlace(w.tenant));
    if (next < 0) return;
    const [{ tenant: nextTenant, enter }] = waiting.splice(next, 1);
    take(nextTenant);
    enter();
  };
  return (req, res, next) => {
    const tenant = tenantOf(req, res);
    const enter = () => {
      if (req.destroyed || res.closed) return release(tenant); // gone while it waited: pass the place on
      res.once('close', () => release(tenant));
      next();
    };
    if (hasPlace(tenant)) {
      take(tenant);
      return enter();
    }
    const refuse = (error: ApiError) => {
      res.setHeader('Retry-After', retryAfter);
      res.setHeader('Connection', 'close'); // the body it is still sending is not read
      next(error);
    };
    if (waiting.length >= limits.queue) {
      return refuse(new ApiError(503, 'server_busy', `this server is receiving ${limits.concurrency + limits.queue} uploads already; retry after a few seconds`));
    }
    if (waitingOf(tenant) >= tenantQueue) {
      return refuse(
        new ApiError(429, 'upload_share_busy', `this tenant's share of this server's uploads (${tenantConcurrency} received at once, ${tenantQueue} waiting) is in use; retry after a few seconds`),
      );
    }
    const entry = { tenant, enter };
    waiting.push(entry);
    // A caller that gives up while waiting leaves the queue (its place was never taken).
    req.once('close', () => {
      const index = waiting.indexOf(entry);
      if (index >= 0) waiting.splice(index, 1);
    });
  };
}

/** An upload route's gate with the deployment's limits (UPLOAD_CONCURRENCY, UPLOAD_QUEUE and each tenant's share). */
export const configuredUploadGate = (config: Config): RequestHandler =>
  uploadGate({
    concurrency: config.UPLOAD_CONCURRENCY,
    queue: config.UPLOAD_QUEUE,
    perTenant: { concurrency: config.UPLOAD_CONCURRENCY_PER_TENANT, queue: config.UPLOAD_QUEUE_PER_TENANT },
  });
