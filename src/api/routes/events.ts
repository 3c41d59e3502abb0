import { Router, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { JobEventStreams } from '../../flows/jobEventStreams';
import { parseStreamId, readJobEvents, type JobEvent } from '../../flows/jobEvents';
import { TERMINAL_STATUSES } from '../../store/statuses';
import { EventStreamEnded, EventStreamSlots } from '../eventStreamSlots';
import { findBatch, findGeneration, findJob } from '../tenantResources';

const HEARTBEAT_MS = 15_000;
/**
 * GET /jobs/:id/events, /generations/:id/events and /batches/:id/events: Server-Sent Events from
 * the resource's event log (status transitions, steps, generation progress), ending with the
 * terminal status. `Last-Event-ID` (or `?last_event_id=`) resumes after that event. Every stream of
 * the process is read through one shared Redis connection (JobEventStreams); EventStreamSlots caps
 * how many may be open and ends those whose API key is revoked.
 */
export function eventsRouter(deps: { config: Config; redis: Redis }): Router {
  const router = Router();
  const streams = new JobEventStreams(deps.redis, deps.config.QUEUE_PREFIX);
  const slots = new EventStreamSlots(deps.config, deps.redis);
  const stream = async (req: Request, res: Response, job: { _id: { toHexString(): string }; status: string }) => {
    let open = true;
    res.on('close', () => (open = false));
    const jobId = job._id.toHexString();
    const lastId = parseStreamId(String(req.get('last-event-id') ?? req.query.last_event_id ?? '')) ?? '0';
    const headers = { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' };
    if (TERMINAL_STATUSES.has(job.status) && lastId === '0') {
      // Finished before anyone listened (or its log expired): the outcome is still the last word.
      const history = await readJobEvents(deps.redis, deps.config.QUEUE_PREFIX, jobId, '0', 1);
      if (history.length === 0) {
        res.writeHead(200, headers);
        res.write(': connected\n\n');
        res.write(`event: status\ndata: ${JSON.stringify({ status: job.status })}\n\n`);
        return void res.end();
      }
    }
    const slot = await slots.acquire(res);
    res.writeHead(200, headers);
    res.write(': connected\n\n');
    const send = (e: JobEvent) => res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
    const subscription = streams.subscribe(jobId, lastId);
    const end = () => subscription.fail(slot.ended.signal.reason);
    slot.ended.signal.addEventListener('abort', end);
    if (slot.ended.signal.aborted) end(); // revoked while the lease was being taken
    res.on('close', () => subscription.close());
    try {
      while (open) {
        const events = await subscription.next(HEARTBEAT_MS);
        if (events.length === 0 && open) res.write(': heartbeat\n\n');
        for (const event of events) {
          send(event);
          if (event.type === 'status' && TERMINAL_STATUSES.has(String(event.data.status))) open = false;
        }
      }
    } catch (err) {
      const message = err instanceof EventStreamEnded ? err.message : 'event stream interrupted; reconnect with Last-Event-ID';
      if (open) res.write(`event: error\ndata: ${JSON.stringify({ message })}\n\n`);
    } finally {
      slot.ended.signal.removeEventListener('abort', end);
      subscription.close();
      slots.release(slot);
      res.end();
    }
  };
  router.get('/jobs/:id/events', async (req, res) => stream(req, res, await findJob(req, res)));
  router.get('/generations/:id/events', async (req, res) => stream(req, res, await findGeneration(req, res)));
  router.get('/batches/:id/events', async (req, res) => stream(req, res, await findBatch(req, res)));
  return router;
}
