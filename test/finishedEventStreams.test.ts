/**
 * An event stream of a finished job, generation or batch ends at once, whatever Last-Event-ID it
 * is opened with (past the end, from the future, from an expired log), and holds no stream slot;
 * a stream of a running one still stays open, still counts, and still ends with its terminal status,
 * even when it was opened past the end of the log.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createApp } from '../src/api/app';
import { appendJobEvent, readJobEvents, type JobEvent } from '../src/flows/jobEvents';
import { eventStreamLeasesKey, jobEventsKey } from '../src/flows/redisKeys';
import { createApiKey } from '../src/store/apiKeyModel';
import { BatchModel } from '../src/store/batchModel';
import { GenerationModel } from '../src/store/generationModel';
import { JobModel } from '../src/store/jobModel';
import { referencePhoto } from './support/fixtures';
import { parseSse, type SseEvent } from './support/serverSentEvents';
import { startStack, type Stack } from './support/stack';

type OpenStream = { status: number; events: () => SseEvent[]; text: () => string; ended: Promise<void>; close: () => void };

function openStream(base: string, path: string, auth: string, lastEventId?: string): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: auth, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) };
    const req = http.get(`${base}${path}`, { headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      const ended = new Promise<void>((done) => res.on('close', done));
      resolve({ status: res.statusCode!, events: () => parseSse(text), text: () => text, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

/** Resolves when `promise` does, or fails once `ms` have passed (a stream that stays open never resolves). */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const FUTURE_ID = '99999999999999-0';
const STREAMS_PER_TENANT = 1;

describe('event streams of finished resources', () => {
  let stack: Stack;
  let server: http.Server;
  let base: string;
  let auth: string;

  beforeAll(async () => {
    stack = await startStack({
      gpu: false,
      orchestrator: false,
      config: { AUTH_MODE: 'required', RATE_LIMIT_PER_MINUTE: '100000', EVENT_STREAMS_PER_TENANT: String(STREAMS_PER_TENANT) },
    });
    auth = `Bearer ${(await createApiKey('acme')).key}`;
    server = createApp({ config: stack.config, objects: stack.objects, queues: stack.queues, redis: stack.redis }).listen(0);
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await stack.close();
  });

  const append = (id: string, type: JobEvent['type'], data: Record<string, unknown>) => appendJobEvent(stack.redis, stack.config.QUEUE_PREFIX, id, type, data);
  const log = (id: string) => readJobEvents(stack.redis, stack.config.QUEUE_PREFIX, id, '0', 1);
  const leases = () => stack.redis.zcard(eventStreamLeasesKey(stack.config.QUEUE_PREFIX, 'acme'));

  /** A resource of each kind, its log ending in a terminal status, and its document finished. */
  const resources = {
    job: {
      path: (id: string) => `/jobs/${id}/events`,
      create: async () => (await request(stack.app).post('/jobs').set('Authorization', auth).attach('image_file', await referencePhoto(), 'me.jpg').expect(202)).body.job_id as string,
      finish: (id: string, status: string) => JobModel.updateOne({ _id: id }, { $set: { status } }),
    },
    generation: {
      path: (id: string) => `/generations/${id}/events`,
      create: async () => (await request(stack.app).post('/generations').set('Authorization', auth).send({ prompt: 'x', width: 512, height: 512 }).expect(202)).body.generation_id as string,
      finish: (id: string, status: string) => GenerationModel.updateOne({ _id: id }, { $set: { status } }),
    },
    batch: {
      path: (id: string) => `/batches/${id}/events`,
      create: async () =>
        (await request(stack.app).post('/batches').set('Authorization', auth).send({ target: { type: 'generations', requests: [{ prompt: 'x', width: 512, height: 512 }] } }).expect(202)).body
          .batch_id as string,
      finish: (id: string, status: string) => BatchModel.updateOne({ _id: id }, { $set: { status } }),
    },
  };
  type Kind = keyof typeof resources;

  const finished = async (kind: Kind, status = 'completed') => {
    const id = await resources[kind].create();
    await append(id, 'status', { status: 'running' });
    await append(id, 'step', { step: 'generate', status: 'completed' });
    await append(id, 'status', { status });
    await resources[kind].finish(id, status);
    return { id, events: await log(id) };
  };

  describe('end at once with the outcome, holding no slot, when opened', () => {
    const pastTheEnd: [string, Kind, (events: JobEvent[]) => string | undefined][] = [
      ['after the terminal status (a reconnect)', 'job', (events) => events.at(-1)!.id],
      ['with an id from the future', 'job', () => FUTURE_ID],
      ['after the terminal status (a reconnect)', 'generation', (events) => events.at(-1)!.id],
      ['with an id from the future', 'generation', () => FUTURE_ID],
      ['after the terminal status (a reconnect)', 'batch', (events) => events.at(-1)!.id],
      ['with an id from the future', 'batch', () => FUTURE_ID],
    ];
    it.each(pastTheEnd)('%s: a finished %s', async (_what, kind, lastId) => {
      const { id, events } = await finished(kind);
      // More of them than the tenant has slots: none is taken, none is held.
      const streams = await Promise.all(Array.from({ length: STREAMS_PER_TENANT + 2 }, () => openStream(base, resources[kind].path(id), auth, lastId(events))));
      await within(5_000, 'every stream ended', Promise.all(streams.map((s) => s.ended)));
      for (const stream of streams) {
        expect(stream.status).toBe(200);
        expect(stream.events()).toEqual([{ event: 'status', data: { status: 'completed' } }]);
      }
      expect(await leases()).toBe(0);
    });

    it('whose log has expired, with the id of an event it once held', async () => {
      const { id, events } = await finished('job', 'failed');
      await stack.redis.del(jobEventsKey(stack.config.QUEUE_PREFIX, id));
      const stream = await openStream(base, resources.job.path(id), auth, events[1].id);
      await within(5_000, 'the stream ended', stream.ended);
      expect(stream.events()).toEqual([{ event: 'status', data: { status: 'failed' } }]);
    });

    it('and leave the tenant its slot for a running job', async () => {
      const { id, events } = await finished('job');
      for (let i = 0; i < 5; i++) await within(5_000, 'the stream ended', (await openStream(base, resources.job.path(id), auth, events.at(-1)!.id)).ended);
      const running = await resources.job.create();
      const live = await openStream(base, resources.job.path(running), auth);
      expect(live.status).toBe(200);
      expect(await leases()).toBe(1);
      live.close();
    });
  });

  describe('still send', () => {
    it.each([['job'], ['generation'], ['batch']] as [Kind][])('the rest of a finished %s\'s log after an earlier id, ending with its terminal status', async (kind) => {
      const { id, events } = await finished(kind);
      const stream = await openStream(base, resources[kind].path(id), auth, events[0].id);
      await within(5_000, 'the stream ended', stream.ended);
      expect(stream.events()).toEqual(events.slice(1).map((e) => ({ id: e.id, event: e.type, data: e.data })));
    });

    it('the whole log of a finished job to a stream without Last-Event-ID', async () => {
      const { id, events } = await finished('job', 'cancelled');
      const stream = await openStream(base, resources.job.path(id), auth);
      await within(5_000, 'the stream ended', stream.ended);
      expect(stream.events()).toEqual(events.map((e) => ({ id: e.id, event: e.type, data: e.data })));
    });

    it('a retried job\'s events up to its first terminal status, and the next cycle after it', async () => {
      const { id, events } = await finished('job', 'failed');
      await append(id, 'status', { status: 'running' });
      await append(id, 'status', { status: 'completed' });
      await resources.job.finish(id, 'completed');
      const first = await openStream(base, resources.job.path(id), auth);
      await within(5_000, 'the stream ended', first.ended);
      expect(first.events().map((e) => e.data)).toEqual(events.map((e) => e.data));
      const next = await openStream(base, resources.job.path(id), auth, events.at(-1)!.id);
      await within(5_000, 'the stream ended', next.ended);
      expect(next.events().map((e) => e.data)).toEqual([{ status: 'running' }, { status: 'completed' }]);
    });
  });

  describe('a running job', () => {
    it.each([
      ['after its last event', (events: JobEvent[]) => events.at(-1)!.id],
      ['with an id from the future', () => FUTURE_ID],
    ])('opened %s: stays open holding a slot, then sends what comes and ends with the terminal status', async (_what, lastId) => {
      const id = await resources.job.create();
      await append(id, 'status', { status: 'running' });
      const stream = await openStream(base, resources.job.path(id), auth, lastId(await log(id)));
      expect(stream.status).toBe(200);
      await new Promise((r) => setTimeout(r, 300));
      expect(await leases()).toBe(1);
      const refused = await openStream(base, resources.job.path(id), auth);
      expect(refused.status).toBe(429); // live streams still count against the tenant's cap
      refused.close();
      await append(id, 'step', { step: 'prompt', status: 'completed' });
      await append(id, 'status', { status: 'completed' });
      await within(10_000, 'the stream ended', stream.ended);
      expect(stream.events().map((e) => e.data)).toEqual([{ step: 'prompt', status: 'completed' }, { status: 'completed' }]);
      for (let waited = 0; (await leases()) !== 0 && waited < 5_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      expect(await leases()).toBe(0);
    });
  });
});
