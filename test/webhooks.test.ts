import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { QueueName } from '../src/flows/queues';
import { UnsafeTarget } from '../src/flows/webhooks/outboundTarget';
import { deliver } from '../src/flows/webhooks/delivery';
import { sign, verify } from '../src/flows/webhooks/signature';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

type Received = { headers: Record<string, string>; body: string };

/** A webhook receiver (the peer we cannot run: a customer's endpoint), as a real local HTTP server. */
async function startReceiver(statuses: number[]) {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ headers: req.headers as Record<string, string>, body });
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`, received, close: () => new Promise((r) => server.close(r)) };
}

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('webhooks', () => {
  it('signs like the Standard Webhooks reference vector', () => {
    const sig = sign('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(sig).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  describe('delivered through the notify queue', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({ notifier: true, config: { WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: 'true', WEBHOOK_BACKOFF_MS: '50' } });
    });
    afterAll(() => stack.close());

    it('sends signed step and terminal events, retries a failed delivery and records every attempt', async () => {
      const receiver = await startReceiver([500]); // the first delivery fails, the rest succeed
      const res = await request(stack.app)
        .post('/jobs')
        .attach('image_file', await referencePhoto(), 'me.jpg')
        .field('webhook_url', receiver.url)
        .field('webhook_events', 'job.completed,job.step');
      expect(res.status).toBe(202);
      const jobId = res.body.job_id;
      await stack.waitForJob(jobId);
      // Every delivery has been made once the terminal one is recorded (it is queued last) and the
      // notify queue holds nothing more (the failed first one may still wait for its retry).
      const notify = stack.queues.get(QueueName.notify);
      let deliveries: any[] = [];
      for (let i = 0; i < 200; i++) {
        deliveries = (await request(stack.app).get(`/jobs/${jobId}/deliveries`)).body.deliveries;
        const pending = await notify.getJobCountByTypes('waiting', 'active', 'delayed', 'prioritized');
        if (pending === 0 && deliveries.some((d) => d.type === 'job.completed' && d.status === 200)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await receiver.close();
      for (const r of receiver.received) expect(verify(SECRET, r.headers, r.body)).toBe(true);
      expect(verify(`whsec_${randomBytes(32).toString('base64')}`, receiver.received[0].headers, receiver.received[0].body)).toBe(false);
      const bodies = receiver.received.map((r) => JSON.parse(r.body));
      // Deliveries are concurrent and a retry comes later, so arrival order is not event order: the
      // body's timestamp is. The terminal event is the latest one.
      // One job.completed event (received twice if it was the delivery that failed first).
      const completed = bodies.filter((b) => b.type === 'job.completed');
      expect(new Set(receiver.received.filter((_, i) => bodies[i].type === 'job.completed').map((r) => r.headers['webhook-id'])).size).toBe(1);
      expect(completed[0]).toMatchObject({ data: { job_id: jobId, status: 'completed' } });
      for (const b of bodies) expect(Date.parse(b.timestamp)).toBeLessThanOrEqual(Date.parse(completed[0].timestamp));
      expect(bodies.filter((b) => b.type === 'job.step').map((b) => b.data.step)).toEqual(expect.arrayContaining(['prompt', 'generate', 'validate']));
      // The failed first delivery was retried under the same webhook-id.
      const first = receiver.received[0].headers['webhook-id'];
      expect(receiver.received.filter((r) => r.headers['webhook-id'] === first)).toHaveLength(2);
      const attemptsOfFirst = deliveries.filter((d) => d.webhook_id === first);
      expect(attemptsOfFirst.map((d) => [d.attempt, d.status])).toEqual([[1, 500], [2, 200]]);
      expect(deliveries.length).toBe(receiver.received.length);
    });

    it('notifies the end of a generation too', async () => {
      const receiver = await startReceiver([]);
      const res = await request(stack.app).post('/generations?wait=20').send({ prompt: 'a fox', webhook: { url: receiver.url } });
      expect(res.body.status).toBe('completed');
      for (let i = 0; i < 200 && receiver.received.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await receiver.close();
      expect(receiver.received).toHaveLength(1);
      expect(verify(SECRET, receiver.received[0].headers, receiver.received[0].body)).toBe(true);
      expect(JSON.parse(receiver.received[0].body)).toMatchObject({ type: 'generation.completed', data: { generation_id: res.body.generation_id, status: 'completed' } });
      let deliveries: any[] = [];
      for (let i = 0; i < 200 && deliveries.length === 0; i++) {
        deliveries = (await request(stack.app).get(`/generations/${res.body.generation_id}/deliveries`)).body.deliveries;
        if (deliveries.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(deliveries).toEqual([expect.objectContaining({ webhook_id: receiver.received[0].headers['webhook-id'], type: 'generation.completed', url: receiver.url, attempt: 1, status: 200 })]);
    });
  });

  describe('a retried job', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({
        notifier: true,
        config: { WEBHOOK_SECRET: SECRET, WEBHOOK_ALLOW_PRIVATE: 'true', MAX_ATTEMPTS: '1' },
        gpu: { validate: () => ({ passed: false, score: 0.1, checks: [], feedback: 'no' }) },
      });
    });
    afterAll(() => stack.close());

    it('that ends the same way again is notified again, under a webhook id of its own', async () => {
      const receiver = await startReceiver([]);
      const res = await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg').field('webhook_url', receiver.url);
      const jobId = res.body.job_id;
      expect((await stack.waitForJob(jobId)).status).toBe('failed_validation');
      expect((await request(stack.app).post(`/jobs/${jobId}/retry`)).status).toBe(202);
      await stack.waitForJob(jobId, (j) => j.status === 'failed_validation' && j.cycle === 2);
      for (let i = 0; i < 200 && receiver.received.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      await receiver.close();
      const ids = receiver.received.map((r) => r.headers['webhook-id']);
      expect(receiver.received.map((r) => JSON.parse(r.body).type)).toEqual(['job.failed_validation', 'job.failed_validation']);
      expect(ids.sort()).toEqual([`whk-${jobId}-c2-failed_validation`, `whk-${jobId}-failed_validation`]); // in either order: deliveries are concurrent
    });
  });

  describe('SSRF protection and configuration', () => {
    let stack: Stack;
    beforeAll(async () => {
      stack = await startStack({ gpu: false, orchestrator: false, config: { WEBHOOK_SECRET: SECRET } });
    });
    afterAll(() => stack.close());

    // Checked by address only: nothing is ever sent to these.
    it.each(['http://127.0.0.1:9/hook', 'http://localhost/hook', 'http://10.1.2.3/hook', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/hook', 'http://192.168.1.1/'])(
      'refuses %s at submission, naming webhook_url',
      async (url) => {
        const res = await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg').field('webhook_url', url);
        expect(res.status).toBe(400);
        expect(res.body.error).toMatchObject({ code: 'invalid_webhook', field: 'webhook_url' });
      },
    );

    it('checks a generation webhook the same way', async () => {
      const res = await request(stack.app).post('/generations').send({ prompt: 'x', webhook: { url: 'http://169.254.169.254/' } });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_webhook', field: 'webhook.url' });
    });

    it('refuses non-http schemes, credentials in the URL and unknown event names', async () => {
      const photo = await referencePhoto();
      const post = () => request(stack.app).post('/jobs').attach('image_file', photo, 'me.jpg');
      expect((await post().field('webhook_url', 'ftp://example.com/x')).body.error.field).toBe('webhook_url');
      expect((await post().field('webhook_url', 'http://user:pw@example.com/x')).body.error.field).toBe('webhook_url');
      expect((await post().field('webhook_url', 'http://93.184.215.14/x').field('webhook_events', 'job.exploded')).body.error.field).toBe('webhook_events');
    });

    it('delivers to a host name, connecting to the address it resolved and checked', async () => {
      const receiver = await startReceiver([]);
      const byName = receiver.url.replace('127.0.0.1', 'localhost');
      const result = await deliver({ url: byName, id: 'whk-by-name', body: '{"ok":true}', secret: SECRET, allowPrivate: true, deadlineMs: 10_000 });
      await receiver.close();
      expect(result.status).toBe(200);
      expect(receiver.received.map((r) => [r.headers['webhook-id'], r.headers.host, r.body])).toEqual([['whk-by-name', byName.split('/')[2], '{"ok":true}']]);
    });

    it('re-checks the address at delivery time and sends nothing to a private target', async () => {
      const receiver = await startReceiver([]);
      await expect(deliver({ url: receiver.url, id: 'whk-1', body: '{}', secret: SECRET, allowPrivate: false, deadlineMs: 10_000 })).rejects.toBeInstanceOf(UnsafeTarget);
      await receiver.close();
      expect(receiver.received).toEqual([]);
    });
  });

  it('a deployment without WEBHOOK_SECRET says it sends no webhooks', async () => {
    const stack = await startStack({ gpu: false, orchestrator: false });
    try {
      const res = await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg').field('webhook_url', 'https://example.com/hook');
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'webhooks_disabled', field: 'webhook_url' });
    } finally {
      await stack.close();
    }
  });
});
