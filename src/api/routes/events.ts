import { Router, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { readJobEvents, TERMINAL_STATUSES, type JobEvent } from '../../flows/jobEvents';
import { findBatch } from './batches';
import { findGeneration } from './generations';
import { findJob } from './jobs';

const HEARTBEAT_MS = 15_000;
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;

/**
 * GET /jobs/:id/events, /generations/:id/events and /batches/:id/events: Server-Sent Events from
 * the resource's event log (status transitions, steps, generation progress), ending with the
 * terminal status. `Last-Event-ID` (or `?last_event_id=`)
 * resumes after that event. Each stream holds its own Redis connection for its blocking reads.
 */
export function eventsRouter(deps: { config: Config; redis: Redis }): Router {
  const router = Router();
  const stream = async (req: Request, res: Response, job: { _id: { toHexString(): string }; status: string }) => {
    const jobId = job._id.toHexString();
    const given = String(req.get('last-event-id') ?? req.query.last_event_id ?? '');
    let lastId = STREAM_ID.test(given) ? given : '0';
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(': connected\n\n');
    const send = (e: JobEvent) => res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
    if (TERMINAL_STATUSES.has(job.status) && lastId === '0') {
      // Finished before anyone listened (or its log expired): the outcome is still the last word.
      const history = await readJobEvents(deps.redis, deps.config.QUEUE_PREFIX, jobId, '0', 1);
      if (history.length === 0) {
        res.write(`event: status\ndata: ${JSON.stringify({ status: job.status })}\n\n`);
        return void res.end();
      }
    }
    // Its own connection for blocking reads; queued until it is connected, then failing fast like the API's.
    const reader = deps.redis.duplicate({ enableOfflineQueue: true });
    let open = true;
    req.on('close', () => {
      open = false;
      reader.disconnect();
    });
    try {
      while (open) {
        const events = await readJobEvents(reader, deps.config.QUEUE_PREFIX, jobId, lastId, HEARTBEAT_MS);
        if (events.length === 0) res.write(': heartbeat\n\n');
        for (const event of events) {
          send(event);
          lastId = event.id;
          if (event.type === 'status' && TERMINAL_STATUSES.has(String(event.data.status))) open = false;
        }
      }
    } catch (err) {
      if (open) res.write(`event: error\ndata: ${JSON.stringify({ message: 'event stream interrupted; reconnect with Last-Event-ID' })}\n\n`);
    } finally {
      reader.disconnect();
      res.end();
    }
  };
  router.get('/jobs/:id/events', async (req, res) => stream(req, res, await findJob(req, res)));
  router.get('/generations/:id/events', async (req, res) => stream(req, res, await findGeneration(req, res)));
  router.get('/batches/:id/events', async (req, res) => stream(req, res, await findBatch(req, res)));
  return router;
}
