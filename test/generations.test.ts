import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { createApiKey } from '../src/store/apiKeyModel';
import { startStack, type Stack } from './support/stack';

const SECRETS_KEY = randomBytes(32).toString('base64');

describe('POST /generations (text-to-image)', () => {
  let stack: Stack;
  let auth: string;
  let other: string;
  beforeAll(async () => {
    stack = await startStack({ config: { AUTH_MODE: 'required', SECRETS_KEY } });
    auth = `Bearer ${(await createApiKey('acme')).key}`;
    other = `Bearer ${(await createApiKey('globex')).key}`;
  });
  afterAll(() => stack.close());

  const post = (body: object, query = '') => request(stack.app).post(`/generations${query}`).set('Authorization', auth).send(body);

  it('?wait returns the finished images as keys with presigned URLs that really serve them', async () => {
    const res = await post({ prompt: 'a lighthouse at dusk', width: 512, height: 768, num_images: 2, seed: 7 }, '?wait=20');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'completed', seed: 7, request: { prompt: 'a lighthouse at dusk', num_images: 2 } });
    expect(res.body.images).toHaveLength(2);
    const image = res.body.images[0];
    expect(image).toMatchObject({ key: `generations/${res.body.generation_id}/0.png`, width: 512, height: 768 });
    expect(image.base64).toBeUndefined();
    const fetched = await fetch(image.url);
    expect(fetched.status).toBe(200);
    expect(Buffer.from(await fetched.arrayBuffer()).subarray(1, 4).toString()).toBe('PNG');
    const call = stack.gpu!.callsFor(res.body.generation_id, 'generate')[0];
    expect(call.input).toMatchObject({ prompt: 'a lighthouse at dusk', seed: 7, numImages: 2, outputFormat: 'png' });
  });

  it('answers 202 when the result takes longer than ?wait, and base64 only when asked', async () => {
    const res = await post({ prompt: 'a cat' });
    expect(res.status).toBe(202);
    const id = res.body.generation_id;
    let view;
    for (let i = 0; i < 200; i++) {
      view = (await request(stack.app).get(`/generations/${id}`).set('Authorization', auth)).body;
      if (view.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(view.status).toBe('completed');
    expect(view.images[0].base64).toBeUndefined();
    const events = await request(stack.app).get(`/generations/${id}/events`).set('Authorization', auth);
    expect(events.text).toMatch(/event: status\ndata: \{"status":"completed"\}\n\n$/);
    const withBase64 = (await request(stack.app).get(`/generations/${id}?include=base64`).set('Authorization', auth)).body;
    expect(Buffer.from(withBase64.images[0].base64, 'base64').subarray(1, 4).toString()).toBe('PNG');
    expect((await request(stack.app).get(`/generations/${id}`).set('Authorization', other)).status).toBe(404);
  });

  it('seals per-request secrets before the step payload: the token is nowhere in clear text', async () => {
    const token = `hf_${randomBytes(12).toString('hex')}`;
    const res = await post({ prompt: 'a private style', secrets: { hf_token: token } }, '?wait=20');
    expect(res.status).toBe(200);
    expect(JSON.stringify(res.body)).not.toContain(token);
    const call = stack.gpu!.callsFor(res.body.generation_id, 'generate')[0];
    expect(call.input.secrets).toMatch(/^v1\./);
    expect(JSON.stringify(call.input)).not.toContain(token);
  });

  it('Idempotency-Key returns the same generation for the same request and 422 for another', async () => {
    const first = await post({ prompt: 'idempotent', seed: 3 }).set('Idempotency-Key', 'gen-1');
    const again = await post({ prompt: 'idempotent', seed: 3 }).set('Idempotency-Key', 'gen-1');
    expect([first.status, again.status]).toEqual([202, 200]);
    expect(again.body.generation_id).toBe(first.body.generation_id);
    expect(again.headers['idempotent-replayed']).toBe('true');
    const other = await post({ prompt: 'something else' }).set('Idempotency-Key', 'gen-1');
    expect([other.status, other.body.error.code]).toEqual([422, 'idempotency_key_reused']);
  });

  it.each([
    [{ prompt: 'x', destination: { bucket: 'my-renders' } }, 'secrets.s3'],
    [{ prompt: 'x', secrets: { s3: { access_key_id: 'a', secret_access_key: 'b' } } }, 'destination'],
    [{ prompt: 'x', destination: { bucket: 'my-renders', endpoint: 'http://127.0.0.1:9000' }, secrets: { s3: { access_key_id: 'a', secret_access_key: 'b' } } }, 'destination.endpoint'],
    [{ prompt: '' }, 'prompt'],
    [{ prompt: 'x', width: 250 }, 'width'],
    [{ prompt: 'x', num_images: 5 }, 'num_images'],
    [{ prompt: 'x', loras: [{ repo: 'not a repo' }] }, 'loras.0.repo'],
    [{ prompt: 'x', aws_secret_access_key: 'AKIA...' }, 'aws_secret_access_key'],
  ])('rejects %j naming %s', async (body, field) => {
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'invalid_generation', field });
  });

  describe('GET /generations', () => {
    let initech: string;
    const created: string[] = [];
    const list = (query: object, key = initech) => request(stack.app).get('/generations').query(query).set('Authorization', key);
    beforeAll(async () => {
      initech = `Bearer ${(await createApiKey('initech')).key}`;
      for (let i = 0; i < 3; i++) {
        // return_base64: what GET /generations/:id would inline, a list never does.
        const res = await request(stack.app).post('/generations?wait=20').set('Authorization', initech).send({ prompt: `listed ${i}`, return_base64: true });
        expect(res.body.status).toBe('completed');
        created.push(res.body.generation_id);
      }
    });

    it("lists the caller's generations newest first, in stable cursor pages, filtered by status, without image bytes", async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: any = await list({ limit: 2, ...(cursor ? { cursor } : {}) });
        expect(page.status).toBe(200);
        expect(page.body.generations.length).toBeLessThanOrEqual(2);
        for (const g of page.body.generations) expect(g.images[0]).toMatchObject({ url: expect.any(String), width: 1024 });
        for (const g of page.body.generations) expect(g.images[0].base64).toBeUndefined();
        seen.push(...page.body.generations.map((g: { generation_id: string }) => g.generation_id));
        cursor = page.body.next_cursor;
      } while (cursor);
      expect(seen).toEqual([...created].reverse());
      expect((await list({ status: 'completed' })).body.generations).toHaveLength(3);
      expect((await list({ status: 'failed' })).body.generations).toEqual([]);
      // Another tenant's list holds none of them.
      const theirs = (await list({ limit: 100 }, other)).body.generations.map((g: { generation_id: string }) => g.generation_id);
      expect(theirs.filter((id: string) => created.includes(id))).toEqual([]);
    });

    it.each([
      [{ limit: 1 }, 1],
      [{ limit: 100 }, 3],
      [{}, 3],
      [{ status: 'cancelled' }, 0],
      [{ cursor: 'f'.repeat(24) }, 3],
      [{ cursor: '0'.repeat(24) }, 0],
    ])('accepts %j', async (query, count) => {
      const res = await list(query);
      expect(res.status).toBe(200);
      expect(res.body.generations).toHaveLength(count);
    });

    it.each([
      [{ limit: 0 }, 'limit'],
      [{ limit: 101 }, 'limit'],
      [{ limit: 'ten' }, 'limit'],
      [{ cursor: 'zz' }, 'cursor'],
      [{ status: 'done' }, 'status'],
      [{ sort: 'oldest' }, 'sort'],
    ])('refuses %j, naming the field', async (query, field) => {
      const res = await list(query);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'invalid_query', field });
    });
  });
});

describe('generations without a GPU worker or a SECRETS_KEY', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ gpu: false });
  });
  afterAll(() => stack.close());

  it('refuses per-request secrets instead of storing them', async () => {
    const res = await request(stack.app).post('/generations').send({ prompt: 'x', secrets: { hf_token: 'hf_abc' } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'secrets_disabled', field: 'secrets' });
  });

  it('cancels a queued generation before its step runs, then refuses a second cancel', async () => {
    const id = (await request(stack.app).post('/generations').send({ prompt: 'x' })).body.generation_id;
    let status = '';
    for (let i = 0; i < 200 && status !== 'running'; i++) {
      status = (await request(stack.app).get(`/generations/${id}`)).body.status;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect((await request(stack.app).post(`/generations/${id}/cancel`)).status).toBe(202);
    for (let i = 0; i < 200 && status !== 'cancelled'; i++) {
      status = (await request(stack.app).get(`/generations/${id}`)).body.status;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(status).toBe('cancelled');
    const again = await request(stack.app).post(`/generations/${id}/cancel`);
    expect([again.status, again.body.error.code]).toEqual([409, 'not_cancellable']);
  });
});
