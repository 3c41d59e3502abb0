import express from 'express';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import request from 'supertest';
import { errorHandler } from '../src/api/errors';
import { createHttpServer } from '../src/api/httpServer';
import { uploadGate } from '../src/api/uploadGate';
import { ScheduleModel } from '../src/store/scheduleModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

/**
 * The limits a request meets before any work starts: a tenant's schedule limit under parallel
 * requests, inputs that could never run, bounded uploads, slow clients cut by the server's timeouts
 * (first found by the black-box probe of issue 10). The SSRF tables live in outboundTarget.test.ts,
 * the upload error messages in badRequests.test.ts.
 */

const listen = (server: http.Server) => new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
const close = (server: http.Server) => new Promise((r) => { server.closeAllConnections(); server.close(r); });

/** Writes `head` on a raw socket and collects what comes back until the server closes it. */
function rawRequest(port: number, head: string) {
  const socket = net.connect(port, '127.0.0.1');
  socket.write(head);
  let answer = '';
  socket.on('data', (d) => (answer += d.toString()));
  const closed = new Promise<string>((r) => socket.on('close', () => r(answer)));
  socket.on('error', () => undefined);
  return { socket, closed };
}

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe('limits a request meets before any work starts', () => {
  let stack: Stack;
  beforeAll(async () => {
    // Nothing runs the jobs: these cases are about what the API accepts and how it holds up.
    stack = await startStack({
      orchestrator: false,
      gpu: false,
      config: { SCHEDULE_MAX_PER_TENANT: '50', UPLOAD_CONCURRENCY: '1', UPLOAD_QUEUE: '0', HTTP_HEADERS_TIMEOUT_MS: '400', HTTP_REQUEST_TIMEOUT_MS: '1500' },
    });
  });
  afterAll(() => stack.close());

  describe('the schedule limit holds under parallel requests', () => {
    const schedule = () => request(stack.app).post('/schedules').send({ cron: '0 3 * * *', target: { type: 'portraits_from_prefix', prefix: 'nightly/' } });

    it('60 parallel POST /schedules with a limit of 50 store exactly 50, and a deleted one frees its place', async () => {
      const answers = await Promise.all(Array.from({ length: 60 }, schedule));
      expect(answers.filter((r) => r.status === 201)).toHaveLength(50);
      expect(answers.filter((r) => r.status === 409).map((r) => r.body.error.code)).toEqual(Array(10).fill('too_many_schedules'));
      expect(await ScheduleModel.countDocuments({})).toBe(50);
      const created = answers.find((r) => r.status === 201)!.body.schedule_id;
      expect((await request(stack.app).delete(`/schedules/${created}`)).status).toBe(204);
      expect((await schedule()).status).toBe(201);
      expect((await schedule()).status).toBe(409);
    });
  });

  describe('inputs that could never run are refused at submission, naming the field', () => {
    const generation = (lora: Record<string, unknown>) => request(stack.app).post('/generations').send({ prompt: 'a lighthouse', loras: [{ scale: 1, ...lora }] });
    const batch = (prefix: string) => request(stack.app).post('/batches').send({ target: { type: 'portraits_from_prefix', prefix } });

    it.each(['../a', 'a/..', './.', '..', 'a/b/c', 'a', '-a/b', 'a/b.', 'a--b/c', 'a/b..c', `a/${'x'.repeat(97)}`])('refuses the LoRA repo %j', async (repo) => {
      const res = await generation({ repo });
      expect([res.status, res.body.error.field]).toEqual([400, 'loras.0.repo']);
      expect(res.body.error.message).toMatch(/owner\/name/);
    });

    it.each(['black-forest-labs/FLUX.1-dev', 'XLabs-AI/flux-RealismLora', 'a/b', 'user_1/my.lora-v2', `a/${'x'.repeat(96)}`])('accepts the LoRA repo %j', async (repo) => {
      expect((await generation({ repo })).status).toBe(202);
    });

    it.each(['../../../../etc/passwd', 'sub/lora.safetensors', 'lora.bin', 'lora.pt', '.hidden.safetensors', 'a..safetensors', '/abs.safetensors'])('refuses the weight_name %j', async (weight_name) => {
      const res = await generation({ repo: 'owner/name', weight_name });
      expect([res.status, res.body.error.field]).toEqual([400, 'loras.0.weight_name']);
      expect(res.body.error.message).toMatch(/file name ending in \.safetensors/);
    });

    it.each(['lora.safetensors', 'pytorch_lora_weights.safetensors', 'flux-realism_v1.0.safetensors'])('accepts the weight_name %j', async (weight_name) => {
      expect((await generation({ repo: 'owner/name', weight_name })).status).toBe(202);
    });

    it.each(['./', '../', 'a/./', 'a/../', '/abs/', 'march', 'a//'])('refuses the batch prefix %j', async (prefix) => {
      const res = await batch(prefix);
      expect([res.status, res.body.error.field]).toEqual([400, 'target.prefix']);
    });

    it.each(['', 'march/', '2026/march/', 'a.b/', '.hidden/', 'x..y/'])('accepts the batch prefix %j', async (prefix) => {
      expect((await batch(prefix)).status).toBe(202);
    });
  });

  describe('uploads are bounded per process (back-pressure)', () => {
    it('a third upload while one is received and one waits gets 503 with Retry-After; the waiting one runs when a place frees', async () => {
      const entered: (() => void)[] = [];
      const app = express();
      app.post('/upload', uploadGate({ concurrency: 1, queue: 1 }), (_req, res) => void entered.push(() => res.json({ ok: true })));
      app.use(errorHandler);
      const server = http.createServer(app);
      const port = await listen(server);
      const post = () => fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST' });
      try {
        const first = post();
        while (entered.length === 0) await new Promise((r) => setTimeout(r, 10));
        // One of these waits for the place, the other finds the queue full.
        const [second, third] = [post(), post()];
        const refused = await within(Promise.race([second, third]), 10_000, 'a refusal');
        expect(refused.status).toBe(503);
        expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
        expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('server_busy');
        entered.shift()!();
        expect((await first).status).toBe(200);
        while (entered.length === 0) await new Promise((r) => setTimeout(r, 10));
        entered.shift()!();
        expect((await Promise.all([second, third])).map((r) => r.status).sort()).toEqual([200, 503]);
      } finally {
        await close(server);
      }
    });

    it('at the API: while an upload holds the only place, more uploads get 503 at once, /health answers, and the upload completes', async () => {
      const server = createHttpServer(stack.app, stack.config);
      const port = await listen(server);
      const photo = await referencePhoto();
      const boundary = 'probe-boundary';
      const head = `--${boundary}\r\nContent-Disposition: form-data; name="image_file"; filename="me.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
      const tail = `\r\n--${boundary}--\r\n`;
      const body = Buffer.concat([Buffer.from(head), photo, Buffer.from(tail)]);
      try {
        // A slow upload: headers and half of the body, the rest later.
        const slow = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/jobs', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length } });
        const slowAnswer = new Promise<number>((r) => slow.on('response', (res) => { res.resume(); r(res.statusCode!); }));
        slow.write(body.subarray(0, body.length / 2));
        let busy: Response | undefined;
        for (let i = 0; i < 100 && !busy; i++) {
          const form = new FormData();
          form.append('image_file', new Blob([photo], { type: 'image/jpeg' }), 'me.jpg');
          const res = await fetch(`http://127.0.0.1:${port}/jobs`, { method: 'POST', body: form });
          if (res.status === 503) busy = res;
          else await res.arrayBuffer();
        }
        expect(busy?.headers.get('retry-after')).toBeTruthy();
        expect(((await busy!.json()) as { error: { code: string } }).error.code).toBe('server_busy');
        expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
        slow.end(body.subarray(body.length / 2));
        expect(await within(slowAnswer, 10_000, 'the slow upload')).toBe(202);
      } finally {
        await close(server);
      }
    });
  });

  describe('slow clients are cut by the server timeouts', () => {
    let server: http.Server;
    let port: number;
    beforeAll(async () => {
      server = createHttpServer(stack.app, stack.config); // headers 400 ms, whole request 1500 ms
      port = await listen(server);
    });
    afterAll(() => close(server));

    it('cuts a client whose headers never finish with 408', async () => {
      const { closed } = rawRequest(port, 'GET /health HTTP/1.1\r\nHost: probe\r\n');
      expect(await within(closed, 10_000, 'the cut')).toMatch(/^HTTP\/1\.1 408/);
    });

    it('cuts a body that trickles in past the request timeout with 408', async () => {
      const { socket, closed } = rawRequest(port, 'POST /generations HTTP/1.1\r\nHost: probe\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
      const trickle = setInterval(() => socket.writable && socket.write(' '), 100);
      try {
        expect(await within(closed, 10_000, 'the cut')).toMatch(/^HTTP\/1\.1 408/);
      } finally {
        clearInterval(trickle);
      }
    });

    it('serves a request whose body arrives in pieces within the limit, and ordinary requests', async () => {
      const body = JSON.stringify({ prompt: 'a lighthouse at dusk' });
      const { socket, closed } = rawRequest(port, `POST /generations HTTP/1.1\r\nHost: probe\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      for (const piece of [body.slice(0, 10), body.slice(10, 20), body.slice(20)]) {
        await new Promise((r) => setTimeout(r, 100));
        socket.write(piece);
      }
      expect(await within(closed, 10_000, 'the answer')).toMatch(/^HTTP\/1\.1 202/);
      expect((await fetch(`http://127.0.0.1:${port}/parameters`)).status).toBe(200);
    });
  });

  describe('webhook deliveries are listed for generations and batches too', () => {
    it('answers an empty list for a resource without webhooks and 404 for an unknown one', async () => {
      const generation = (await request(stack.app).post('/generations').send({ prompt: 'x' })).body.generation_id;
      const batch = (await request(stack.app).post('/batches').send({ target: { type: 'portraits_from_prefix', prefix: '' } })).body.batch_id;
      expect((await request(stack.app).get(`/generations/${generation}/deliveries`)).body).toEqual({ generation_id: generation, deliveries: [] });
      expect((await request(stack.app).get(`/batches/${batch}/deliveries`)).body).toEqual({ batch_id: batch, deliveries: [] });
      const unknown = randomBytes(12).toString('hex');
      expect((await request(stack.app).get(`/generations/${unknown}/deliveries`)).body.error.code).toBe('generation_not_found');
      expect((await request(stack.app).get(`/batches/${unknown}/deliveries`)).body.error.code).toBe('batch_not_found');
    });
  });
});
