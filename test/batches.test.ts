import { UnrecoverableError } from 'bullmq';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import mongoose from 'mongoose';
import request from 'supertest';
import { checkCron } from '../src/flows/batches/schedules';
import { verify } from '../src/flows/webhooks/signature';
import { createApiKey } from '../src/store/apiKeyModel';
import { JobModel } from '../src/store/jobModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

describe('batches (fan-out/fan-in) and schedules', () => {
  let stack: Stack;
  let auth: string;
  let other: string;
  beforeAll(async () => {
    stack = await startStack({
      // No GPU budget: its schedule fires every second (3600 firings of up to 100 portraits an hour); budgets are gpuBudget.test.ts's.
      config: { AUTH_MODE: 'required', SCHEDULE_MIN_INTERVAL_S: '1', WEBHOOK_SECRET, WEBHOOK_ALLOW_PRIVATE: 'true', GPU_BUDGET_UNITS: '0' },
      notifier: true,
      gpu: {
        generate: async (input, job) => {
          if (input.prompt === 'please fail') throw new UnrecoverableError('scripted failure');
          if (input.prompt.startsWith('slow')) await new Promise((r) => setTimeout(r, 1500));
          return stack.gpu!.defaults.generate(input, job);
        },
      },
    });
    auth = `Bearer ${(await createApiKey('acme')).key}`;
    other = `Bearer ${(await createApiKey('globex')).key}`;
  });
  afterAll(() => stack.close());

  const api = () => request(stack.app);
  const getBatch = async (id: string) => (await api().get(`/batches/${id}`).set('Authorization', auth)).body;
  async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await read();
      if (done(value)) return value;
      if (Date.now() > deadline) throw new Error(`condition not met: ${JSON.stringify(value).slice(0, 500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const inbox = (tenant: string, path: string) => `inbox/${tenant}/${path}`;

  it('fans out generations, counts each state, and summarises when the last child ends', async () => {
    const requests = [{ prompt: 'a red boat' }, { prompt: 'please fail' }, { prompt: 'a blue boat', num_images: 2, width: 512, height: 512 }];
    const res = await api().post('/batches').set('Authorization', auth).send({ target: { type: 'generations', requests } });
    expect(res.status).toBe(202);
    const id = res.body.batch_id;
    const batch = await until(() => getBatch(id), (b) => b.status === 'completed');
    expect(batch.total).toBe(3);
    expect(batch.counts).toEqual({ completed: 2, failed: 1 });
    expect(batch.summary).toMatchObject({ total: 3, counts: { completed: 2, failed: 1 }, success_rate: 2 / 3, skipped: 0 });
    expect(batch.summary.unsuccessful).toEqual([expect.objectContaining({ kind: 'generation', status: 'failed', id: batch.items[1].id })]);
    const events = await api().get(`/batches/${id}/events`).set('Authorization', auth);
    expect(events.text).toMatch(/event: status\ndata: \{"status":"running","total":3\}\n\n[\s\S]*event: status\ndata: \{"status":"completed","counts":\{"completed":2,"failed":1\}\}\n\n$/);
    // Every child is an ordinary generation of the tenant, in request order.
    const third = (await api().get(batch.items[2].url).set('Authorization', auth)).body;
    expect(third).toMatchObject({ status: 'completed', request: { prompt: 'a blue boat', num_images: 2 } });
    expect(third.images).toHaveLength(2);
    expect((await api().get(`/batches/${id}`).set('Authorization', other)).status).toBe(404);
    const list = (await api().get('/batches').set('Authorization', auth)).body;
    expect(list.batches.map((b: { batch_id: string }) => b.batch_id)).toContain(id);
    expect((await api().get('/batches').set('Authorization', other)).body.batches).toEqual([]);
  });

  it('notifies the batch webhook once every child has ended, signed, with the counts', async () => {
    const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => (received.push({ headers: req.headers, body }), res.end()));
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
    const res = await api()
      .post('/batches')
      .set('Authorization', auth)
      .send({ target: { type: 'generations', requests: [{ prompt: 'one' }, { prompt: 'two' }] }, webhook: { url } });
    expect(res.status).toBe(202);
    await until(async () => received.length, (n) => n >= 1);
    receiver.close();
    const [{ headers, body }] = received;
    expect(verify(WEBHOOK_SECRET, headers as Record<string, string>, body)).toBe(true);
    expect(JSON.parse(body)).toMatchObject({ type: 'batch.completed', data: { batch_id: res.body.batch_id, status: 'completed', total: 2, counts: { completed: 2 } } });
    const deliveries = await until(async () => (await api().get(`/batches/${res.body.batch_id}/deliveries`).set('Authorization', auth)).body.deliveries, (d) => d.length >= 1);
    expect(deliveries[0]).toMatchObject({ webhook_id: headers['webhook-id'], type: 'batch.completed', url, attempt: 1, status: 200 });
    expect((await api().get(`/batches/${res.body.batch_id}/deliveries`).set('Authorization', other)).status).toBe(404);
  });

  it('cancels a running batch: the fan-out stops, open children end cancelled, the batch completes', async () => {
    const requests = [{ prompt: 'slow a' }, { prompt: 'slow b' }, { prompt: 'slow c' }];
    const id = (await api().post('/batches').set('Authorization', auth).send({ target: { type: 'generations', requests } })).body.batch_id;
    await until(() => getBatch(id), (b) => b.status === 'running');
    const cancel = await api().post(`/batches/${id}/cancel`).set('Authorization', auth);
    expect([cancel.status, cancel.body]).toEqual([202, { batch_id: id, status: 'cancelling', children_cancelled: 3 }]);
    const batch = await until(() => getBatch(id), (b) => b.status === 'completed');
    expect(batch.counts).toEqual({ cancelled: 3 });
    expect((await api().post(`/batches/${id}/cancel`).set('Authorization', auth)).status).toBe(409);
    expect((await api().post(`/batches/${id}/cancel`).set('Authorization', other)).status).toBe(404);
  });

  it('turns every photo under the tenant inbox prefix into a portrait job, and turns down what is not a photo', async () => {
    await stack.objects.put(inbox('acme', 'team/alice.jpg'), await referencePhoto(), 'image/jpeg');
    await stack.objects.put(inbox('acme', 'team/bob.png'), await referencePhoto({ format: 'png' }), 'image/png');
    await stack.objects.put(inbox('acme', 'team/notes.txt'), Buffer.from('not a photo'), 'text/plain');
    await stack.objects.put(inbox('globex', 'team/mallory.jpg'), await referencePhoto(), 'image/jpeg');
    const res = await api()
      .post('/batches')
      .set('Authorization', auth)
      .send({ target: { type: 'portraits_from_prefix', prefix: 'team/', parameters: { attire: 'business_formal' } } });
    expect(res.status).toBe(202);
    const batch = await until(() => getBatch(res.body.batch_id), (b) => b.status === 'completed');
    expect(batch.items.map((i: { source_key: string }) => i.source_key).sort()).toEqual([inbox('acme', 'team/alice.jpg'), inbox('acme', 'team/bob.png')]);
    expect(batch.counts).toEqual({ completed: 2 });
    expect(batch.skipped).toEqual([{ key: inbox('acme', 'team/notes.txt'), reason: expect.stringContaining('JPEG, PNG or WebP') }]);
    const job = await JobModel.findById(batch.items[0].id).lean<{ tenant: string; parameters: { attire: string } }>();
    expect(job).toMatchObject({ tenant: 'acme', parameters: { attire: 'business_formal' } });
  });

  it('rejects malformed batches naming the field', async () => {
    const post = (body: object) => api().post('/batches').set('Authorization', auth).send(body);
    const cases: [object, string][] = [
      [{ target: { type: 'videos' } }, 'target.type'],
      [{ target: { type: 'generations', requests: [] } }, 'target.requests'],
      [{ target: { type: 'generations', requests: [{ prompt: 'x', secrets: { hf_token: 'hf_x' } }] } }, 'target.requests.0.secrets'],
      [{ target: { type: 'portraits_from_prefix', prefix: '../globex/' } }, 'target.prefix'],
      [{ target: { type: 'portraits_from_prefix', prefix: 'team/', parameters: { attire: 'cape' } } }, 'target.parameters.attire'],
      [{ target: { type: 'generations', requests: [{ prompt: 'x' }] }, extra: 1 }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const res = await post(body);
      expect([res.status, res.body.error.code, res.body.error.field]).toEqual([400, 'invalid_batch', field]);
    }
  });

  it('a schedule takes each inbox photo once however often it fires, and again when the photo changes', async () => {
    const folder = 'scheduled/';
    await stack.objects.put(inbox('acme', `${folder}carol.jpg`), await referencePhoto(), 'image/jpeg');
    await stack.objects.put(inbox('acme', `${folder}dave.jpg`), await referencePhoto({ width: 500 }), 'image/jpeg');
    const created = await api()
      .post('/schedules')
      .set('Authorization', auth)
      .send({ name: 'inbox sweep', cron: '* * * * * *', tz: 'Europe/Berlin', target: { type: 'portraits_from_prefix', prefix: folder } });
    expect(created.status).toBe(201);
    const id = created.body.schedule_id;
    expect(created.body).toMatchObject({ cron: '* * * * * *', tz: 'Europe/Berlin', next_run_at: expect.any(String) });
    const batchesOf = async () => (await api().get(`/batches?schedule_id=${id}&limit=100`).set('Authorization', auth)).body.batches as { batch_id: string; status: string; total: number }[];
    const portraitsTaken = async () => {
      const finished = (await batchesOf()).filter((b) => b.status === 'completed');
      return finished.reduce((n, b) => n + b.total, 0);
    };
    // At least three firings have finished: still only the two photos were taken.
    await until(batchesOf, (bs) => bs.filter((b) => b.status === 'completed').length >= 3);
    expect(await portraitsTaken()).toBe(2);
    // The same key with new bytes (a new ETag) is a new photo.
    await stack.objects.put(inbox('acme', `${folder}carol.jpg`), await referencePhoto({ width: 520 }), 'image/jpeg');
    await until(portraitsTaken, (n) => n >= 3);
    const fired = (await batchesOf()).length;
    await until(batchesOf, (bs) => bs.length >= fired + 2 && bs.every((b) => b.status === 'completed'));
    expect(await portraitsTaken()).toBe(3);

    expect((await api().get(`/schedules/${id}`).set('Authorization', other)).status).toBe(404);
    expect((await api().delete(`/schedules/${id}`).set('Authorization', other)).status).toBe(404);
    expect((await api().get('/schedules').set('Authorization', auth)).body.schedules.map((s: { schedule_id: string }) => s.schedule_id)).toEqual([id]);
    const claims = mongoose.connection.collection('processedphotos');
    expect(await claims.countDocuments({ scope: `schedule:${id}` })).toBe(3);
    expect((await api().delete(`/schedules/${id}`).set('Authorization', auth)).status).toBe(204);
    expect(await claims.countDocuments({ scope: `schedule:${id}` })).toBe(0);
    expect((await api().get(`/schedules/${id}`).set('Authorization', auth)).status).toBe(404);
    // No firing after the delete: wait out any firing in flight, then nothing new for 2.5 s.
    await new Promise((r) => setTimeout(r, 1500));
    const afterDelete = (await batchesOf()).length;
    await new Promise((r) => setTimeout(r, 2500));
    expect((await batchesOf()).length).toBe(afterDelete);
  });

  it('rejects bad cron patterns, time zones and too-frequent schedules naming the field', async () => {
    const post = (body: object) => api().post('/schedules').set('Authorization', auth).send(body);
    const target = { type: 'generations', requests: [{ prompt: 'x' }] };
    const cases: [object, string, RegExp][] = [
      [{ cron: '61 * * * *', target }, 'cron', /not a cron pattern/],
      [{ cron: '0 9 * * *', tz: 'Mars/Olympus', target }, 'tz', /unknown time zone/],
      [{ cron: '*/5 * * * * *', target: { type: 'generations', requests: [] } }, 'target.requests', /.+/],
      [{ target }, 'cron', /.+/],
    ];
    for (const [body, field, message] of cases) {
      const res = await post(body);
      expect([res.status, res.body.error.code, res.body.error.field]).toEqual([400, 'invalid_schedule', field]);
      expect(res.body.error.message).toMatch(message);
    }
    // Under a deployment's minimum interval (here 120 s), a cron firing every minute is refused.
    expect(checkCron('* * * * *', 'UTC', 120)).toEqual({ field: 'cron', message: 'fires every 60 s; the shortest interval allowed is 120 s' });
    expect(checkCron('*/2 * * * *', 'America/New_York', 120)).toBeUndefined();
  });
});
