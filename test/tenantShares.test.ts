import express from 'express';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpServer } from '../src/api/httpServer';
import { uploadGate } from '../src/api/uploadGate';
import { QueueName } from '../src/flows/queues';
import { deliver } from '../src/flows/webhooks/delivery';
import { queueWebhook } from '../src/flows/webhooks/notify';
import { createApiKey } from '../src/store/apiKeyModel';
import { WebhookDeliveryModel } from '../src/store/webhookDeliveryModel';
import { startNotifierRole } from '../src/workers/notifierRole';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

/**
 * One tenant's slow clients and slow receivers hold at most its share: upload places in the API
 * (uploadGate.ts) and delivery places in the notifier (notifierRole.ts), with real sockets on
 * 127.0.0.1; and a delivery attempt has one whole deadline, however slowly a receiver drips.
 */

const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const listen = (server: http.Server) => new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
const close = (server: http.Server) => new Promise((r) => { server.closeAllConnections(); server.close(r); });

async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} not within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A receiver that answers 200 at once, then drips its body one byte every 200 ms and never ends it (no idle timeout ever fires). */
function drippingReceiver() {
  const sockets = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    sockets.add(res);
    const timer = setInterval(() => res.write('.'), 200);
    res.on('close', () => clearInterval(timer));
  });
  return { server, held: sockets };
}

describe('fair shares of upload and delivery places between tenants', () => {
  let stack: Stack;
  const auth: Record<string, string> = {};
  beforeAll(async () => {
    stack = await startStack({
      orchestrator: false,
      gpu: false,
      config: {
        AUTH_MODE: 'required',
        UPLOAD_CONCURRENCY: '4',
        UPLOAD_QUEUE: '4',
        WEBHOOK_SECRET,
        WEBHOOK_ALLOW_PRIVATE: 'true',
        WEBHOOK_CONCURRENCY_PER_TENANT: '3',
        WEBHOOK_ATTEMPT_DEADLINE_MS: '8000',
        WEBHOOK_ATTEMPTS: '1',
      },
    });
    for (const tenant of ['flooder', 'neighbour']) auth[tenant] = `Bearer ${(await createApiKey(tenant)).key}`;
  });
  afterAll(() => stack.close());

  describe('uploads: 4 places and 4 waiting per process, a tenant at most 2 of each', () => {
    const boundary = 'share-boundary';
    let body: Buffer;
    beforeAll(async () => {
      const photo = await referencePhoto();
      body = Buffer.concat([Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image_file"; filename="me.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`), photo, Buffer.from(`\r\n--${boundary}--\r\n`)]);
    });

    /** An upload that sends its headers and half its body, then holds; `finish` sends the rest. */
    function slowUpload(port: number, tenant: string) {
      const req = http.request({ port, host: '127.0.0.1', method: 'POST', path: '/jobs', headers: { authorization: auth[tenant], 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length } });
      const answer = new Promise<{ status: number; body: string }>((resolve) =>
        req.on('response', (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        }),
      );
      req.on('error', () => undefined);
      req.write(body.subarray(0, body.length / 2));
      return { answer, finish: () => req.end(body.subarray(body.length / 2)) };
    }

    it("a tenant's 6 slow uploads take its 2 places and 2 waiting; its 5th and 6th get 429; another tenant's upload is served meanwhile, and every held one completes", async () => {
      const server = createHttpServer(stack.app, stack.config);
      const port = await listen(server);
      try {
        const flood = Array.from({ length: 6 }, () => slowUpload(port, 'flooder'));
        // Which two of the six arrive last is the network's business: two answer at once, the others are held.
        const answered: { status: number; body: string }[] = [];
        const pending = new Set(flood);
        flood.forEach((upload) => void upload.answer.then((a) => (answered.push(a), pending.delete(upload))));
        await within((async () => { while (answered.length < 2) await new Promise((r) => setTimeout(r, 20)); })(), 10_000, "the flooder's refusals");
        for (const answer of answered) {
          expect(answer.status).toBe(429);
          expect(JSON.parse(answer.body).error.code).toBe('upload_share_busy');
        }
        const held = [...pending];
        expect(held).toHaveLength(4);
        const form = new FormData();
        form.append('image_file', new Blob([await referencePhoto()], { type: 'image/jpeg' }), 'me.jpg');
        const neighbour = await within(fetch(`http://127.0.0.1:${port}/jobs`, { method: 'POST', body: form, headers: { authorization: auth.neighbour } }), 10_000, "the neighbour's upload");
        expect(neighbour.status).toBe(202);
        expect(answered).toHaveLength(2); // the held ones still held
        for (const upload of held) upload.finish();
        expect((await within(Promise.all(held.map((u) => u.answer)), 20_000, "the flooder's held uploads")).map((a) => a.status)).toEqual([202, 202, 202, 202]);
      } finally {
        await close(server);
      }
    });
  });

  it("a freed upload place goes to the oldest waiting upload whose tenant is under its share, not to an older one of a tenant at its share", async () => {
    const entered: { tenant: string; done: () => void }[] = [];
    const app = express();
    const tenantOf = (req: express.Request) => String(req.headers['x-tenant']);
    app.post('/upload', uploadGate({ concurrency: 2, queue: 4, perTenant: { concurrency: 1, queue: 2 } }, tenantOf), (req, res) => {
      entered.push({ tenant: tenantOf(req), done: () => res.json({ ok: true }) });
    });
    const server = http.createServer(app);
    const port = await listen(server);
    const post = (tenant: string) => fetch(`http://127.0.0.1:${port}/upload`, { method: 'POST', headers: { 'x-tenant': tenant } });
    const enteredCount = async (n: number) => {
      for (let i = 0; i < 500 && entered.length < n; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50)); // and no more than n
      expect(entered.length).toBe(n);
    };
    try {
      const answers = [post('a')];
      await enteredCount(1);
      answers.push(post('a')); // waits: a holds its one place
      await new Promise((r) => setTimeout(r, 50));
      answers.push(post('b'));
      await enteredCount(2);
      answers.push(post('b')); // waits behind a's older one
      await new Promise((r) => setTimeout(r, 50));
      entered[1].done(); // b's place frees: a is still at its share, so b's waiting upload takes it
      await enteredCount(3);
      expect(entered.map((e) => e.tenant)).toEqual(['a', 'b', 'b']);
      entered[0].done();
      await enteredCount(4);
      expect(entered[3].tenant).toBe('a');
      entered[2].done();
      entered[3].done();
      expect((await Promise.all(answers)).map((r) => r.status)).toEqual([200, 200, 200, 200]);
    } finally {
      await close(server);
    }
  });

  describe('webhook deliveries', () => {
    it('a receiver that drips its answer forever is cut at the whole deadline of the attempt, which fails', async () => {
      const { server } = drippingReceiver();
      const port = await listen(server);
      try {
        const result = await within(deliver({ url: `http://127.0.0.1:${port}/hook`, id: 'whk-drip', body: '{}', secret: WEBHOOK_SECRET, allowPrivate: true, deadlineMs: 1000 }), 15_000, 'the cut');
        expect(result).toMatchObject({ status: null, error: 'no complete answer within 1000 ms' });
      } finally {
        await close(server);
      }
    });

    it("a tenant's deliveries to dripping receivers hold at most 3 of the notifier's places: another tenant's webhook is delivered while they hang", async () => {
      const dripping = drippingReceiver();
      const drippingPort = await listen(dripping.server);
      const received: string[] = [];
      const quick = http.createServer((req, res) => {
        received.push(req.headers['webhook-id'] as string);
        req.resume();
        res.end('ok');
      });
      const quickPort = await listen(quick);
      const notifier = startNotifierRole(stack.config, 5);
      const notify = stack.queues.get(QueueName.notify);
      const webhook = (port: number) => ({ url: `http://127.0.0.1:${port}/hook`, events: ['generation.completed' as const] });
      try {
        for (let i = 0; i < 8; i++) {
          await queueWebhook(notify, stack.config, webhook(drippingPort), { type: 'generation.completed', id: `flood-${i}`, jobId: `flood-${i}`, tenant: 'flooder', data: { i } });
        }
        while (dripping.held.size < 3) await new Promise((r) => setTimeout(r, 20));
        await queueWebhook(notify, stack.config, webhook(quickPort), { type: 'generation.completed', id: 'neighbour-1', jobId: 'neighbour-1', tenant: 'neighbour', data: {} });
        // Well within the 8 s each of the flooder's attempts may take (all 5 places would be its own without its share).
        for (let i = 0; i < 200 && !received.includes('neighbour-1'); i++) await new Promise((r) => setTimeout(r, 20));
        expect(received).toEqual(['neighbour-1']);
        expect(dripping.held.size).toBe(3);
        expect(await WebhookDeliveryModel.countDocuments({ tenant: 'neighbour', status: 200 })).toBe(1);
      } finally {
        await close(dripping.server);
        await notifier.close().catch(() => undefined);
        await close(quick);
        await notify.obliterate({ force: true }).catch(() => undefined);
      }
    }, 60_000);
  });
});
