import { Router, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { JobEventStreams } from '../../flows/jobEventStreams';
import { compareStreamIds, parseJobEvents, parseStreamId, type JobEvent } from '../../flows/jobEvents';
import { jobEventsKey } from '../../flows/redisKeys';
import { TERMINAL_STATUSES } from '../../store/statuses';
import { EventStreamEnded, EventStreamSlots } from '../eventStreamSlots';
import { findBatch, findGeneration, findIdentity, findJob } from '../tenantResources';

const HEARTBEAT_MS = 15_000;
/** Log entries read at once when a finished resource's log is replayed. */
const REPLAY_PAGE = 100;
const sseMessage = (e: JobEvent) => `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
const isTerminal = (e: JobEvent) => e.type === 'status' && TERMINAL_STATUSES.has(String(e.data.status));

/**
 * GET /jobs/:id/events, /generations/:id/events, /batches/:id/events and /identities/:id/events:
 * Server-Sent Events from the resource's event log (status transitions, steps, generation and training progress), ending with the
 * terminal status. `Last-Event-ID` (or `?last_event_id=`) resumes after that event. Every stream of
 * the process is read through one shared Redis connection (JobEventStreams); EventStreamSlots caps
 * how many may be open and ends those whose API key is revoked.
 */
export function eventsRouter(deps: { config: Config; redis: Redis }): Router {
  const router = Router();
  const streams = new JobEventStreams(deps.redis, deps.config.QUEUE_PREFIX);
  const slots = new EventStreamSlots(deps.config, deps.redis);
  const logKey = (jobId: string) => jobEventsKey(deps.config.QUEUE_PREFIX, jobId);

  /**
   * A finished resource's log no longer grows: the events after `lastId`, up to its first terminal
   * status, read before anything is sent (a Redis failure is still a 503). Where the log holds no
   * terminal status after `lastId` (the client saw it already, sent an id past the end, or the log
   * expired), the outcome from the document is the last word, an event without an id.
   */
  const finishedRest = async (jobId: string, status: string, lastId: string): Promise<string[]> => {
    const messages: string[] = [];
    for (let after = lastId; ; ) {
      const events = parseJobEvents(await deps.redis.xrange(logKey(jobId), after === '0' ? '-' : `(${after}`, '+', 'COUNT', REPLAY_PAGE));
      for (const event of events) {
        messages.push(sseMessage(event));
        if (isTerminal(event)) return messages;
      }
      if (events.length < REPLAY_PAGE) break;
      after = events.at(-1)!.id;
    }
    return [...messages, `event: status\ndata: ${JSON.stringify({ status })}\n\n`];
  };

  /**
   * Where a live stream starts reading: after `lastId`, or after the log's last event when `lastId`
   * is past it (an id from the future or from another log would otherwise skip every event to come,
   * the terminal status too, and the stream would never end).
   */
  const startPosition = async (jobId: string, lastId: string): Promise<string> => {
    if (lastId === '0') return lastId;
    const [last] = await deps.redis.xrevrange(logKey(jobId), '+', '-', 'COUNT', 1);
    if (!last) return '0';
    return compareStreamIds(lastId, last[0]) > 0 ? last[0] : lastId;
  };

  const stream = async (req: Request, res: Response, job: { _id: { toHexString(): string }; status: string }) => {
    let open = true;
    res.on('close', () => (open = false));
    const jobId = job._id.toHexString();
    const given = parseStreamId(String(req.get('last-event-id') ?? req.query.last_event_id ?? '')) ?? '0';
    const headers = { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' };
    if (TERMINAL_STATUSES.has(job.status)) {
      // Sent at once and ended: no stream slot is taken, and none is held.
      const rest = await finishedRest(jobId, job.status, given);
      res.writeHead(200, headers);
      res.write(': connected\n\n');
      for (const message of rest) res.write(message);
      return void res.end();
    }
    const lastId = await startPosition(jobId, given);
    const slot = await slots.acquire(res);
    res.writeHead(200, headers);
    res.write(': connected\n\n');
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
          res.write(sseMessage(event));
          if (isTerminal(event)) open = false;
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
  router.get('/identities/:id/events', async (req, res) => stream(req, res, await findIdentity(req, res)));
  return router;
}
