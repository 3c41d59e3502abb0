import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createApp } from '../src/api/app';
import type { Config } from '../src/config';
import { JobEventStreams } from '../src/flows/jobEventStreams';
import { appendJobEvent, readJobEvents, type JobEvent } from '../src/flows/jobEvents';
import { eventStreamLeasesKey } from '../src/flows/redisKeys';
import { connectApiRedis } from '../src/redis';
import { createApiKey, revokeApiKey } from '../src/store/apiKeyModel';
import { referencePhoto } from './support/fixtures';
import { parseSse, type SseEvent } from './support/serverSentEvents';
import { startStack, type Stack } from './support/stack';

async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Resolves when `promise` does, or fails once `ms` have passed. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** An event stream held open over a real socket, read as it arrives. */
type OpenStream = { status: number; headers: http.IncomingHttpHeaders; text: () => string; events: () => SseEvent[]; ended: Promise<void>; close: () => void };

function openStream(base: string, path: string, auth: string, lastEventId?: string): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: auth, ...(lastEventId ? { 'last-event-id': lastEventId } : {}) };
    const req = http.get(`${base}${path}`, { headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      const ended = new Promise<void>((done) => res.on('close', done));
      resolve({ status: res.statusCode!, headers: res.headers, text: () => text, events: () => parseSse(text), ended, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}

/** What a stream resuming after `afterId` must have received: the log's entries after it, in order. */
const expectedAfter = (log: JobEvent[], afterId: string) =>
  log.slice(afterId === '0' ? 0 : log.findIndex((e) => e.id === afterId) + 1).map((e) => ({ id: e.id, event: e.type, data: e.data }));

describe('event streams: one shared Redis reader, per-tenant caps, revoked keys', () => {
  // The stack's connections carry this name, so counting them ignores other suites sharing the Redis.
  const connectionName = `events${randomBytes(4).toString('hex')}`;
  let stack: Stack;
  let acme: string;
  let globex: string;
  const servers: http.Server[] = [];

  beforeAll(async () => {
    stack = await startStack({
      orchestrator: false,
      gpu: false,
      config: {
        AUTH_MODE: 'required',
        REDIS_URL: `${process.env.REDIS_URL}?connectionName=${connectionName}`,
        RATE_LIMIT_PER_MINUTE: '100000',
        EVENT_STREAMS_PER_TENANT: '100',
        EVENT_STREAM_AUTH_CHECK_MS: '200',
      },
    });
    acme = `Bearer ${(await createApiKey('acme')).key}`;
    globex = `Bearer ${(await createApiKey('globex')).key}`;
  });
  afterAll(async () => {
    for (const server of servers) server.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    await stack.close();
  });

  /** An API process of its own (its own shared reader and stream count) on the stack's Redis and MongoDB. */
  const listen = async (config: Partial<Config> = {}): Promise<string> => {
    const app = createApp({ config: { ...stack.config, ...config }, objects: stack.objects, queues: stack.queues, redis: stack.redis });
    const server = app.listen(0);
    servers.push(server);
    await new Promise((r) => server.once('listening', r));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  const submitJob = async (auth: string): Promise<string> => {
    const res = await request(stack.app).post('/jobs').set('Authorization', auth).attach('image_file', await referencePhoto(), 'me.jpg');
    expect(res.status).toBe(202);
    return res.body.job_id;
  };

  const append = (jobId: string, type: JobEvent['type'], data: Record<string, unknown>) => appendJobEvent(stack.redis, stack.config.QUEUE_PREFIX, jobId, type, data);
  const log = (jobId: string) => readJobEvents(stack.redis, stack.config.QUEUE_PREFIX, jobId, '0', 1);
  const namedClients = async () => String(await stack.redis.client('LIST')).split('\n').filter((line) => line.includes(` name=${connectionName} `));
  /** The shared readers blocked in XREAD right now (one per API process with open streams). */
  const blockedReaders = async () => (await namedClients()).filter((line) => line.includes(' cmd=xread '));

  it('serves 60 open streams over one Redis connection, each with exactly its events, and closes it with the last stream', async () => {
    const base = await listen();
    const jobs = await Promise.all([1, 2, 3, 4].map(() => submitJob(acme)));
    for (const jobId of jobs) {
      await append(jobId, 'step', { step: 'prompt', attempt: 1, status: 'queued' });
      await append(jobId, 'step', { step: 'prompt', attempt: 1, status: 'completed' });
    }
    const firstIds = new Map(await Promise.all(jobs.map(async (jobId) => [jobId, (await log(jobId))[0].id] as const)));
    const clientsBefore = (await namedClients()).length;

    // 15 per job, taking turns: one from the beginning, the next resuming after the job's first event.
    const opened = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const jobId = jobs[i % jobs.length];
        const resumes = Math.floor(i / jobs.length) % 2 === 1;
        const after = resumes ? firstIds.get(jobId)! : '0';
        return { jobId, after, stream: await openStream(base, `/jobs/${jobId}/events`, acme, resumes ? after : undefined) };
      }),
    );
    expect(new Set(opened.filter((o) => o.jobId === jobs[0]).map((o) => o.after)).size).toBe(2);
    expect(opened.map((o) => o.stream.status)).toEqual(Array(60).fill(200));
    for (const { stream } of opened) await until('history on every stream', () => stream.events().some((e) => (e.data as { status?: string }).status === 'completed'));
    // One shared reader, not one connection per stream.
    expect((await namedClients()).length - clientsBefore).toBeLessThanOrEqual(1);

    for (const jobId of jobs) await append(jobId, 'progress', { step: 'generate', denoise_step: 1, denoise_total: 4, job: jobId });
    for (const jobId of jobs) await append(jobId, 'status', { status: 'completed' });
    await Promise.all(opened.map((o) => o.stream.ended));
    for (const { jobId, after, stream } of opened) expect(stream.events()).toEqual(expectedAfter(await log(jobId), after));

    await until('the shared reader closed with the last stream', async () => (await namedClients()).length <= clientsBefore);
  });

  it('caps open streams per tenant across API processes: the one past the cap answers 429, a closed stream frees its slot, another tenant is unaffected', async () => {
    const [processA, processB] = [await listen({ EVENT_STREAMS_PER_TENANT: 3 }), await listen({ EVENT_STREAMS_PER_TENANT: 3 })];
    const job = await submitJob(acme);
    const globexJob = await submitJob(globex);
    const path = `/jobs/${job}/events`;
    const held = [await openStream(processA, path, acme), await openStream(processA, path, acme), await openStream(processB, path, acme)];
    expect(held.map((s) => s.status)).toEqual([200, 200, 200]);

    for (const base of [processA, processB]) {
      const refused = await openStream(base, path, acme);
      await refused.ended;
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toBe('5');
      expect(JSON.parse(refused.text()).error).toEqual({ code: 'too_many_streams', message: 'at most 3 open event streams per tenant; close one first' });
    }
    const otherTenant = await openStream(processA, `/jobs/${globexJob}/events`, globex);
    expect(otherTenant.status).toBe(200);

    held[2].close();
    const again = await until('a slot freed by the closed stream', async () => {
      const stream = await openStream(processA, path, acme);
      if (stream.status === 200) return stream;
      stream.close();
    });
    for (const stream of [...held, otherTenant, again]) stream.close();
  });

  it('ignores the lapsed leases of a crashed API process when counting a tenant\'s streams', async () => {
    const base = await listen({ EVENT_STREAMS_PER_TENANT: 2 });
    const { key } = await createApiKey('initech');
    const auth = `Bearer ${key}`;
    const job = await submitJob(auth);
    const [seconds] = await stack.redis.time();
    const leases = eventStreamLeasesKey(stack.config.QUEUE_PREFIX, 'initech');
    await stack.redis.zadd(leases, (Number(seconds) - 1) * 1000, 'crashed-1', (Number(seconds) - 1) * 1000, 'crashed-2');
    const streams = [await openStream(base, `/jobs/${job}/events`, auth), await openStream(base, `/jobs/${job}/events`, auth)];
    expect(streams.map((s) => s.status)).toEqual([200, 200]);
    // A lease still live (a process that has not crashed) does count.
    streams[1].close();
    await until('the closed stream released its lease', async () => (await stack.redis.zcard(leases)) === 1);
    await stack.redis.zadd(leases, (Number(seconds) + 600) * 1000, 'live-elsewhere');
    const refused = await openStream(base, `/jobs/${job}/events`, auth);
    expect(refused.status).toBe(429);
    refused.close();
    streams[0].close();
  });

  it('caps the streams one API process serves: 503 with Retry-After past EVENT_STREAMS_MAX, served again once one closes', async () => {
    const base = await listen({ EVENT_STREAMS_MAX: 2 });
    const [acmeJob, globexJob] = [await submitJob(acme), await submitJob(globex)];
    const held = [await openStream(base, `/jobs/${acmeJob}/events`, acme), await openStream(base, `/jobs/${globexJob}/events`, globex)];
    expect(held.map((s) => s.status)).toEqual([200, 200]);
    const refused = await openStream(base, `/jobs/${globexJob}/events`, globex);
    await refused.ended;
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('5');
    expect(JSON.parse(refused.text()).error).toEqual({ code: 'server_busy', message: 'this API process serves at most 2 event streams; retry shortly' });

    held[0].close();
    const again = await until('a slot freed in this process', async () => {
      const stream = await openStream(base, `/jobs/${globexJob}/events`, globex);
      if (stream.status === 200) return stream;
      stream.close();
    });
    for (const stream of [held[1], again]) stream.close();
  });

  it('ends an open stream within EVENT_STREAM_AUTH_CHECK_MS of its API key being revoked; streams on other keys stay open', async () => {
    const base = await listen();
    const { id, key } = await createApiKey('acme', 'to revoke');
    const job = await submitJob(acme);
    const doomed = await openStream(base, `/jobs/${job}/events`, `Bearer ${key}`);
    const kept = await openStream(base, `/jobs/${job}/events`, acme);
    expect([doomed.status, kept.status]).toEqual([200, 200]);

    await revokeApiKey(id);
    // Checked every 200 ms here; the bound is generous for a loaded machine.
    await within(5_000, 'the revoked key\'s stream ended', doomed.ended);
    expect(doomed.events().at(-1)).toEqual({ event: 'error', data: { message: 'the API key was revoked' } });

    await append(job, 'status', { status: 'completed' });
    await kept.ended;
    expect(kept.events().at(-1)).toMatchObject({ event: 'status', data: { status: 'completed' } });
    expect(doomed.events().some((e) => e.event === 'status')).toBe(false);
  });

  it('ends every stream with event: error when the shared read fails, and serves the next stream on a new connection', async () => {
    const base = await listen();
    const job = await submitJob(acme);
    await append(job, 'step', { step: 'prompt', attempt: 1, status: 'queued' });
    const stream = await openStream(base, `/jobs/${job}/events`, acme);
    await until('the first event', () => stream.events().length === 1);
    const reader = await until('the shared reader blocked in XREAD', async () => {
      const readers = await blockedReaders();
      return readers.length === 1 && readers[0];
    });
    await stack.redis.client('KILL', 'ID', /\bid=(\d+)/.exec(reader)![1]);
    await stream.ended;
    expect(stream.events().at(-1)).toEqual({ event: 'error', data: { message: 'event stream interrupted; reconnect with Last-Event-ID' } });

    const resumed = await openStream(base, `/jobs/${job}/events`, acme, stream.events()[0].id);
    await append(job, 'status', { status: 'completed' });
    await resumed.ended;
    expect(resumed.events()).toEqual(expectedAfter(await log(job), stream.events()[0].id!));
  });

  describe('JobEventStreams', () => {
    it('wakes its blocked read for a new subscriber instead of waiting out the block, each subscriber from its own position', async () => {
      // A block far longer than the waits below: only CLIENT UNBLOCK can end the read in time.
      const streams = new JobEventStreams(stack.redis, stack.config.QUEUE_PREFIX, 600_000);
      const [quiet, busy] = [randomBytes(12).toString('hex'), randomBytes(12).toString('hex')];
      await append(busy, 'step', { n: 1 });
      await append(busy, 'step', { n: 2 });
      const [first] = await log(busy);
      const waiting = streams.subscribe(quiet, '0');
      await until('the read blocked', async () => (await blockedReaders()).length === 1);
      const fromStart = streams.subscribe(busy, '0');
      const fromFirst = streams.subscribe(busy, first.id);
      const all = await log(busy);
      expect(await fromStart.next(20_000)).toEqual(all);
      expect(await fromFirst.next(20_000)).toEqual(all.slice(1));
      expect(await waiting.next(0)).toEqual([]);
      streams.close(new Error('test over'));
      await expect(waiting.next(0)).rejects.toThrow('test over');
    });

    it('still starts a new subscriber promptly when Redis refuses CLIENT UNBLOCK (an ACL without it), by polling', async () => {
      const [user, password] = [`events-${randomBytes(4).toString('hex')}`, randomBytes(8).toString('hex')];
      await stack.redis.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all', '-client|unblock');
      const url = new URL(`${process.env.REDIS_URL}?connectionName=${connectionName}`);
      [url.username, url.password] = [user, password];
      const restricted = await connectApiRedis(url.toString());
      const streams = new JobEventStreams(restricted, stack.config.QUEUE_PREFIX, 600_000);
      try {
        const [quiet, busy] = [randomBytes(12).toString('hex'), randomBytes(12).toString('hex')];
        await append(busy, 'step', { n: 1 });
        streams.subscribe(quiet, '0');
        await until('the read blocked', async () => (await blockedReaders()).length === 1);
        const late = streams.subscribe(busy, '0');
        expect(await late.next(20_000)).toEqual(await log(busy));
        // The refused wake-up really happened (Redis logs it), so this start came from polling.
        const denied = (await stack.redis.call('ACL', 'LOG')) as unknown[][];
        expect(denied.some((entry) => entry.includes('client|unblock') && entry.includes(user))).toBe(true);
      } finally {
        streams.close(new Error('test over'));
        restricted.disconnect();
        await stack.redis.call('ACL', 'DELUSER', user);
      }
    });
  });
});
