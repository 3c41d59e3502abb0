import type { RequestHandler } from 'express';
import { ApiError } from './errors';

/**
 * Back-pressure for uploads: at most `concurrency` requests of a route are received and decoded at
 * once per process, `queue` more wait their turn, and beyond that the caller gets 503 with
 * Retry-After at once. So a burst of uploads cannot starve /health, reads and event streams of the
 * event loop and the decoder threads, and memory stays bounded (concurrency × the
 * files a request may carry × MAX_UPLOAD_BYTES).
 */
export function uploadGate(limits: { concurrency: number; queue: number; retryAfterS?: number }): RequestHandler {
  let active = 0;
  const waiting: (() => void)[] = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else active -= 1;
  };
  return (req, res, next) => {
    const enter = () => {
      if (req.destroyed || res.closed) return release(); // gone while it waited: pass the place on
      res.once('close', release);
      next();
    };
    if (active < limits.concurrency) {
      active += 1;
      return enter();
    }
    if (waiting.length >= limits.queue) {
      res.setHeader('Retry-After', String(limits.retryAfterS ?? 2));
      res.setHeader('Connection', 'close'); // the body it is still sending is not read
      return next(new ApiError(503, 'server_busy', `this server is receiving ${limits.concurrency + limits.queue} uploads already; retry after a few seconds`));
    }
    waiting.push(enter);
    // A caller that gives up while waiting leaves the queue (its slot was never taken).
    req.once('close', () => {
      const index = waiting.indexOf(enter);
      if (index >= 0) waiting.splice(index, 1);
    });
  };
}
