import { UnrecoverableError, type Job } from 'bullmq';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { eraseTenant } from '../src/flows/erasure/tenantErasure';
import { appendJobEvent } from '../src/flows/jobEvents';
import { cancelledKey } from '../src/flows/redisKeys';
import { createApiKey } from '../src/store/apiKeyModel';
import { IdentityModel } from '../src/store/identityModel';
import { JobModel } from '../src/store/jobModel';
import { referencePhoto, SEED_PARAMETERS } from './support/fixtures';
import { dumpMongo, dumpRedis } from './support/secretScan';
import { parseSse } from './support/serverSentEvents';
import { startStack, type Stack } from './support/stack';

/**
 * Identities through the API, the orchestrator and the GPU doubles (the steps' own behaviour on the
 * tiny models is the Python suite's, and the real face check is identityPhotoCheck.test.ts's).
 */
describe('identities', () => {
  let stack: Stack;
  let auth: string;
  let other: string;
  /** Set by a test to hold train_identity until its identity is cancelled. */
  const holdTraining = new Set<string>();

  beforeAll(async () => {
    stack = await startStack({
      // 'frugal' may spend 1,000 GPU units an hour: one default identity (identityCost: 792), not two.
      // Uploads above 1.5 MB in all are refused (20 test photos are about 0.5 MB together).
      // The tests poll each identity's view: the per-key rate limit is not what they test.
      config: { AUTH_MODE: 'required', RATE_LIMIT_PER_MINUTE: '100000', IDENTITY_UPLOAD_MAX_BYTES: String(1_500_000), TENANT_LIMITS: JSON.stringify({ frugal: { budgetUnits: 1000 } }), WEBHOOK_SECRET: `whsec_${randomBytes(32).toString('base64')}`, WEBHOOK_ALLOW_PRIVATE: 'true' },
      notifier: true,
      gpu: {
        train_identity: async (input, job: Job) => {
          if (!holdTraining.has(input.identityId)) return stack.gpu!.defaults.train_identity(input, job);
          // Reports progress like the worker (the job's progress, the identity's log), then waits for a cancel.
          for (let step = 1; ; step++) {
            if (step <= 3) {
              await job.updateProgress({ step, total: input.recipe.steps, loss: 1 / step });
              await appendJobEvent(stack.redis, stack.config.QUEUE_PREFIX, input.identityId, 'progress', { step: 'train_identity', train_step: step, train_total: input.recipe.steps, loss: 1 / step });
            }
            if (await stack.redis.exists(cancelledKey(stack.config.QUEUE_PREFIX, input.identityId))) throw new UnrecoverableError('{"code":"step_cancelled","params":{}}\ncancelled by request');
            await new Promise((r) => setTimeout(r, 50));
          }
        },
      },
    });
    auth = `Bearer ${(await createApiKey('acme')).key}`;
    other = `Bearer ${(await createApiKey('globex')).key}`;
  });
  afterAll(() => stack.close());

  const photos = (n: number, format: 'jpeg' | 'png' | 'webp' = 'jpeg') => Promise.all(Array.from({ length: n }, (_, i) => referencePhoto({ width: 480 + 16 * i, format })));
  function post(files: Buffer[], fields: Record<string, string> = { name: 'Ada' }, key = auth) {
    let req = request(stack.app).post('/identities').set('Authorization', key);
    for (const [name, value] of Object.entries(fields)) req = req.field(name, value);
    files.forEach((file, i) => (req = req.attach('photos', file, `photo-${i}.jpg`)));
    return req;
  }
  const get = (path: string, key = auth) => request(stack.app).get(path).set('Authorization', key);
  async function waitFor(id: string, statuses: string[]) {
    for (let i = 0; i < 400; i++) {
      const view = (await get(`/identities/${id}`)).body;
      if (statuses.includes(view.status)) return view;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`identity ${id} never reached ${statuses.join('|')}`);
  }
  /** Every object under identities/ belongs to an identity that exists: a refused request kept nothing. */
  async function expectNoOrphanPhotos() {
    const owners = new Set((await stack.objects.list('identities/', 10_000)).map((o) => o.key.split('/')[1]));
    for (const owner of owners) expect({ owner, exists: Boolean(await IdentityModel.exists({ _id: owner })) }).toEqual({ owner, exists: true });
  }
  async function readyIdentity() {
    const res = await post(await photos(5));
    expect(res.status).toBe(202);
    return { id: res.body.identity_id as string, view: await waitFor(res.body.identity_id, ['ready']) };
  }

  it('learns an identity: prepare, caption, train, evaluate in turn; the view and the event stream say how it went', async () => {
    const res = await post(await photos(4), { name: 'Ada Lovelace', training: JSON.stringify({ steps: 500, rank: 8 }) });
    expect(res.status).toBe(202);
    const id = res.body.identity_id;
    expect(res.headers.location).toBe(`/identities/${id}`);
    const view = await waitFor(id, ['ready']);
    expect(view).toMatchObject({ name: 'Ada Lovelace', status: 'ready', training: { steps: 500, rank: 8, learning_rate: 1e-4, resolution: 512 }, error: null });
    expect(view.trigger_token).toMatch(/^zq[0-9a-f]{8}$/);
    expect(view.photos).toHaveLength(4);
    expect(view.photos[0]).toMatchObject({ key: `identities/${id}/photos/0.jpg`, caption: `a photo of ${view.trigger_token} person` });
    expect(view.lora).toEqual({ steps_done: 500, loss_average: 0.1, resumed_from_step: 0 });
    expect(view.evaluation).toMatchObject({ median_distance_with_lora: 0.4, median_distance_without_lora: 0.6, renders_with_face: { with_lora: 3, without_lora: 3 } });
    // Each step fed by the one before it, all under the identity's prefix.
    const calls = stack.gpu!.callsFor(id);
    expect(calls.map((c) => c.step)).toEqual(['check_identity_photos', 'prepare_identity', 'caption_identity', 'train_identity', 'evaluate_identity']);
    const [, prepare, caption, train, evaluate] = calls.map((c) => c.input);
    expect(prepare).toMatchObject({ photoKeys: view.photos.map((p: { key: string }) => p.key), resolution: 512, triggerToken: view.trigger_token, outputPrefix: `identities/${id}/prepared` });
    expect(caption.photos).toEqual([0, 1, 2, 3].map((i) => ({ key: `identities/${id}/prepared/${i}.png` })));
    expect(train).toMatchObject({ photos: [0, 1, 2, 3].map((i) => ({ key: `identities/${id}/prepared/${i}.png`, caption: `a photo of ${view.trigger_token} person` })), recipe: { steps: 500, rank: 8, learningRate: 1e-4, checkpointEvery: 100 }, loraKey: `identities/${id}/lora.safetensors` });
    expect(evaluate).toMatchObject({ loraKey: `identities/${id}/lora.safetensors`, embeddingsKey: `identities/${id}/prepared/embeddings.json`, size: 512, seed: train.recipe.seed });
    const events = parseSse((await get(`/identities/${id}/events`)).text);
    expect(events.filter((e) => e.event === 'status').map((e) => (e.data as { status: string }).status)).toEqual(['preparing', 'training', 'evaluating', 'ready']);
  });

  it('serves the identity\'s photos and evaluation renders to their owner only', async () => {
    const files = await photos(4);
    const id = (await post(files)).body.identity_id;
    const view = await waitFor(id, ['ready']);
    const photo = await get(view.photos[2].url).buffer(true);
    expect([photo.status, photo.headers['content-type']]).toEqual([200, 'image/jpeg']);
    expect(photo.body.equals((await stack.objects.getBuffer(view.photos[2].key))!)).toBe(true);
    const render = await get(view.evaluation.renders[1].url).buffer(true);
    expect([render.status, render.body.toString()]).toEqual([200, 'render 0 with']);
    for (const [path, status, code] of [
      [`/identities/${id}/photos/4/image`, 404, 'image_missing'],
      [`/identities/${id}/photos/-1/image`, 400, 'invalid_index'],
      [`/identities/${id}/evaluation/x/image`, 400, 'invalid_index'],
      [`/identities/${id}/evaluation/6/image`, 404, 'image_missing'],
    ] as const) {
      const res = await get(path);
      expect({ path, status: res.status, code: res.body.error?.code }).toEqual({ path, status, code });
    }
    expect((await get(view.photos[0].url, other)).status).toBe(404);
  });

  it('lists the caller\'s identities only, newest first, filtered by status and paged', async () => {
    const { id } = await readyIdentity();
    const theirs = (await post(await photos(4), { name: 'Theirs' }, other)).body.identity_id;
    const mine = (await get('/identities?status=ready&limit=100')).body.identities.map((i: { identity_id: string }) => i.identity_id);
    expect(mine[0]).toBe(id);
    expect(mine).not.toContain(theirs);
    const page = (await get('/identities?limit=1')).body;
    expect(page.identities).toHaveLength(1);
    expect((await get(`/identities?limit=1&cursor=${page.next_cursor}`)).body.identities[0].identity_id).not.toBe(page.identities[0].identity_id);
    expect((await get('/identities?status=bogus')).status).toBe(400);
  });

  it('refuses every photo set and field it must, naming the field (and the photo), and keeps nothing', async () => {
    const good = await photos(4);
    const corrupt = (await referencePhoto()).subarray(0, 2000);
    const cases: [string, () => Promise<request.Response>, number, string, string, number?][] = [
      ['3 photos', async () => post(await photos(3)), 400, 'too_few_files', 'photos'],
      ['21 photos', async () => post(await photos(21)), 400, 'too_many_files', 'photos'],
      ['no photos', async () => post([]), 400, 'too_few_files', 'photos'],
      ['a corrupt photo', async () => post([...good.slice(0, 2), corrupt, good[3]]), 400, 'unreadable_image', 'photos', 2],
      ['not an image', async () => post([Buffer.from('just some text, not a photo'), ...good.slice(1)]), 415, 'unsupported_image_type', 'photos', 0],
      ['a duplicate name field', async () => post(good, { name: 'Ada' }).field('name', 'Bob'), 400, 'duplicate_field', 'name'],
      ['no name', async () => post(good, {}), 400, 'invalid_name', 'name'],
      ['an unknown field', async () => post(good, { name: 'Ada', colour: 'blue' }), 400, 'unknown_field', 'colour'],
      ['a photo under another field', async () => post(good).attach('image_file', good[0], 'x.jpg'), 400, 'unexpected_field', 'image_file'],
      ['training not JSON', async () => post(good, { name: 'Ada', training: '{steps' }), 400, 'invalid_json', 'training'],
      ['0 steps', async () => post(good, { name: 'Ada', training: '{"steps":0}' }), 400, 'invalid_training', 'training.steps'],
      ['4,001 steps', async () => post(good, { name: 'Ada', training: '{"steps":4001}' }), 400, 'invalid_training', 'training.steps'],
      ['rank 65', async () => post(good, { name: 'Ada', training: '{"rank":65}' }), 400, 'invalid_training', 'training.rank'],
      ['learning rate 0', async () => post(good, { name: 'Ada', training: '{"learning_rate":0}' }), 400, 'invalid_training', 'training.learning_rate'],
      ['learning rate 0.01', async () => post(good, { name: 'Ada', training: '{"learning_rate":0.01}' }), 400, 'invalid_training', 'training.learning_rate'],
      ['resolution 500', async () => post(good, { name: 'Ada', training: '{"resolution":500}' }), 400, 'invalid_training', 'training.resolution'],
      ['an unknown training option', async () => post(good, { name: 'Ada', training: '{"epochs":3}' }), 400, 'invalid_training', 'training.epochs'],
      ['photos over IDENTITY_UPLOAD_MAX_BYTES together', async () => post([...good, Buffer.alloc(1_600_000, 1)]), 413, 'upload_too_large', 'photos'],
      ['JSON instead of multipart', async () => request(stack.app).post('/identities').set('Authorization', auth).send({ name: 'Ada' }), 415, 'multipart_required', 'photos'],
    ];
    const before = await IdentityModel.countDocuments();
    for (const [what, send, status, code, field, index] of cases) {
      const res = await send();
      expect({ what, status: res.status, code: res.body.error?.code, field: res.body.error?.field }).toEqual({ what, status, code, field });
      if (index !== undefined) expect({ what, message: res.body.error.message }).toEqual({ what, message: expect.stringContaining(`photos[${index}]`) });
    }
    expect(await IdentityModel.countDocuments()).toBe(before);
    await expectNoOrphanPhotos();
  });

  it('accepts 4 and 20 photos, mixed formats, and training options at their bounds', async () => {
    const mixed = [...(await photos(2, 'png')), ...(await photos(1, 'webp')), ...(await photos(1, 'jpeg'))];
    const cases: [string, Buffer[], Record<string, string>][] = [
      ['4 photos', await photos(4), { name: 'Four' }],
      ['20 photos', await photos(20), { name: 'Twenty' }],
      ['PNG, WebP and JPEG together', mixed, { name: 'Mixed' }],
      ['the smallest options', await photos(4), { name: 'Low', training: '{"steps":1,"rank":1,"learning_rate":1e-6,"resolution":256}' }],
      ['the largest options', await photos(4), { name: 'High', training: '{"steps":4000,"rank":64,"learning_rate":0.001,"resolution":1024}' }],
    ];
    for (const [what, files, fields] of cases) {
      const res = await post(files, fields);
      expect({ what, status: res.status }).toEqual({ what, status: 202 });
      const stored = await IdentityModel.findById(res.body.identity_id).lean<{ photos: { contentType: string }[] }>();
      expect({ what, count: stored!.photos.length }).toEqual({ what, count: files.length });
    }
  });

  it('names the photo the face check refuses, and keeps none of them', async () => {
    stack.gpu!.script.check_identity_photos = ({ photoKeys }) => ({
      photos: photoKeys.map((_, i) => (i === 2 ? { accepted: false, reason: '2 faces found: one person per photo' } : { accepted: true, faceBox: [1, 2, 3, 4] })),
    });
    try {
      const before = await IdentityModel.countDocuments();
      const res = await post(await photos(5));
      expect(res.status).toBe(422);
      expect(res.body.error).toMatchObject({ code: 'photo_refused', field: 'photos', index: 2, reason: '2 faces found: one person per photo' });
      expect(res.body.error.message).toContain('photos[2]');
      expect(await IdentityModel.countDocuments()).toBe(before);
      const checked = stack.gpu!.calls.filter((c) => c.step === 'check_identity_photos').at(-1)!;
      expect(await stack.objects.list(`identities/${checked.input.identityId}/`, 10)).toEqual([]);
      await expectNoOrphanPhotos();
    } finally {
      delete stack.gpu!.script.check_identity_photos;
    }
  });

  it('shows live training progress, and a cancel during training ends it cancelled', async () => {
    const res = await post(await photos(4), { name: 'Held' });
    const id = res.body.identity_id;
    holdTraining.add(id);
    const training = await waitFor(id, ['training']);
    expect(training.status).toBe('training');
    let progress;
    for (let i = 0; i < 100 && progress?.step !== 3; i++) {
      progress = (await get(`/identities/${id}`)).body.progress;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(progress).toMatchObject({ step: 3, total: 1000, loss: 1 / 3, recent_losses: [1, 1 / 2, 1 / 3] });
    expect(progress.eta_seconds).toEqual(expect.any(Number));
    expect((await request(stack.app).post(`/identities/${id}/cancel`).set('Authorization', other)).status).toBe(404);
    const cancel = await request(stack.app).post(`/identities/${id}/cancel`).set('Authorization', auth);
    expect(cancel.status).toBe(202);
    const ended = await waitFor(id, ['cancelled', 'failed']);
    expect(ended.status).toBe('cancelled');
    expect(stack.gpu!.callsFor(id, 'evaluate_identity')).toEqual([]);
    expect((await request(stack.app).post(`/identities/${id}/cancel`).set('Authorization', auth)).status).toBe(409);
  });

  it('charges an identity its training to the tenant\'s GPU budget, and refunds a refused one', async () => {
    const frugal = `Bearer ${(await createApiKey('frugal')).key}`;
    // Bigger than the whole budget: refused for good, naming the training options.
    const huge = await post(await photos(4), { name: 'Huge', training: '{"steps":4000,"resolution":1024}' }, frugal);
    expect([huge.status, huge.body.error.code, huge.body.error.field]).toEqual([422, 'over_gpu_budget', 'training']);
    stack.gpu!.script.check_identity_photos = ({ photoKeys }) => ({ photos: photoKeys.map((_, i) => (i === 0 ? { accepted: false, reason: 'no face found' } : { accepted: true })) });
    try {
      expect((await post(await photos(4), { name: 'Refused' }, frugal)).status).toBe(422);
    } finally {
      delete stack.gpu!.script.check_identity_photos;
    }
    // The refused set was refunded: the first identity fits, the second is over what is left.
    expect((await post(await photos(4), { name: 'First' }, frugal)).status).toBe(202);
    const second = await post(await photos(4), { name: 'Second' }, frugal);
    expect([second.status, second.body.error.code, second.body.error.field]).toEqual([429, 'gpu_budget_exhausted', 'training']);
    expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('answers another tenant on every identity route as if the identity did not exist', async () => {
    const { id } = await readyIdentity();
    for (const [method, path] of [['get', `/identities/${id}`], ['get', `/identities/${id}/events`], ['get', `/identities/${id}/deliveries`], ['post', `/identities/${id}/cancel`], ['delete', `/identities/${id}`]] as const) {
      const res = await request(stack.app)[method](path).set('Authorization', other);
      expect({ path, method, status: res.status, code: res.body.error?.code }).toEqual({ path, method, status: 404, code: 'identity_not_found' });
    }
    expect((await get(`/identities/${id}`)).status).toBe(200);
    expect((await get('/identities/not-an-id')).status).toBe(400);
  });

  it('creates one identity for concurrent retries with the same Idempotency-Key, and 422 for another request under it', async () => {
    const files = await photos(4);
    const sends = await Promise.all([0, 1, 2].map(() => post(files, { name: 'Once' }).set('Idempotency-Key', 'identity-once')));
    const ids = new Set(sends.map((r) => r.body.identity_id));
    expect(ids.size).toBe(1);
    expect(sends.map((r) => r.status).sort()).toEqual([200, 200, 202]);
    expect(await IdentityModel.countDocuments({ name: 'Once' })).toBe(1);
    const different = await post(files, { name: 'Someone else' }).set('Idempotency-Key', 'identity-once');
    expect([different.status, different.body.error.code]).toEqual([422, 'idempotency_key_reused']);
  });

  it('portrays a ready identity: its most typical photos as references, its LoRA and trigger token to generate, its embeddings to the gate', async () => {
    const { id, view } = await readyIdentity();
    const res = await request(stack.app).post('/jobs').set('Authorization', auth).field('parameters', JSON.stringify(SEED_PARAMETERS)).field('identity_id', id);
    expect(res.status).toBe(202);
    const job = await stack.waitForJob(res.body.job_id);
    expect(job.status).toBe('completed');
    // The doubles' embeddings put photo i at i²/10 on one axis: 2, 1, 3, 0 are the most typical of the 5.
    const typical = [2, 1, 3, 0].map((i) => `identities/${id}/photos/${i}.jpg`);
    const generate = stack.gpu!.callsFor(res.body.job_id, 'generate')[0].input;
    expect(generate.referenceImageKeys).toEqual(typical);
    expect(generate.identityLora).toEqual({ key: `identities/${id}/lora.safetensors`, triggerToken: view.trigger_token, scale: 1 });
    const validate = stack.gpu!.callsFor(res.body.job_id, 'validate')[0].input;
    expect(validate.referenceImageKeys).toEqual(typical);
    expect(validate.identityEmbeddingsKey).toBe(`identities/${id}/prepared/embeddings.json`);
    const shown = (await get(`/jobs/${res.body.job_id}`)).body;
    expect(shown).toMatchObject({ identity_id: id, reference_count: 4 });
  });

  it('refuses a portrait of an identity that is not ready, not the caller\'s, malformed, or sent with photos too', async () => {
    const { id } = await readyIdentity();
    const held = (await post(await photos(4), { name: 'Not yet' })).body.identity_id;
    holdTraining.add(held);
    await waitFor(held, ['training']);
    const job = (key: string, identity: string) => request(stack.app).post('/jobs').set('Authorization', key).field('identity_id', identity);
    const cases: [string, () => request.Test, number, string][] = [
      ['not ready', () => job(auth, held), 409, 'identity_not_ready'],
      ["another tenant's", () => job(other, id), 404, 'identity_not_found'],
      ['malformed', () => job(auth, 'abc'), 400, 'invalid_identity_id'],
      ['with a photo too', () => job(auth, id).attach('image_file', Buffer.from('x'), 'x.jpg'), 400, 'ambiguous_person'],
    ];
    for (const [what, send, status, code] of cases) {
      const res = await send();
      expect({ what, status: res.status, code: res.body.error?.code, field: res.body.error?.field }).toEqual({ what, status, code, field: 'identity_id' });
    }
    await request(stack.app).post(`/identities/${held}/cancel`).set('Authorization', auth);
    await waitFor(held, ['cancelled']);
  });

  it('tells its webhook how it ended and records the delivery', async () => {
    const bodies: string[] = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => (bodies.push(body), res.end()));
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;
      const res = await post(await photos(4), { name: 'Hooked', webhook_url: url });
      expect(res.status).toBe(202);
      const id = res.body.identity_id;
      await waitFor(id, ['ready']);
      for (let i = 0; i < 200 && bodies.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(bodies.map((b) => JSON.parse(b))).toEqual([expect.objectContaining({ type: 'identity.ready', data: { identity_id: id, status: 'ready' } })]);
      let deliveries = (await get(`/identities/${id}/deliveries`)).body;
      for (let i = 0; i < 100 && deliveries.deliveries.length === 0; i++) deliveries = (await get(`/identities/${id}/deliveries`)).body;
      expect(deliveries).toMatchObject({ identity_id: id, deliveries: [{ type: 'identity.ready', status: 200 }] });
      const wrongEvent = await post(await photos(4), { name: 'Hooked', webhook_url: url, webhook_events: 'job.completed,identity.bogus' });
      expect([wrongEvent.status, wrongEvent.body.error.field]).toEqual([400, 'webhook_events']);
    } finally {
      await new Promise((r) => receiver.close(r));
    }
  });

  it('erases an identity in training on DELETE: its training is cancelled first and nothing of it is left', async () => {
    const id = (await post(await photos(4), { name: 'Erased mid-training' })).body.identity_id;
    holdTraining.add(id);
    await waitFor(id, ['training']);
    expect((await request(stack.app).delete(`/identities/${id}`).set('Authorization', auth)).status).toBe(204);
    expect((await get(`/identities/${id}`)).status).toBe(404);
    // The held trainer stops once it sees the cancel; then nothing of the identity is written any more.
    for (let i = 0; i < 100 && (await stack.objects.list(`identities/${id}/`, 10)).length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await stack.objects.list(`identities/${id}/`, 10)).toEqual([]);
    expect(stack.gpu!.callsFor(id, 'evaluate_identity')).toEqual([]);
    expect(await IdentityModel.exists({ _id: id })).toBeNull();
  });

  it('erases a tenant\'s identities with the tenant', async () => {
    const leaving = `Bearer ${(await createApiKey('leaving')).key}`;
    const id = (await post(await photos(4), { name: 'Leaving' }, leaving)).body.identity_id;
    for (let i = 0; i < 200 && (await IdentityModel.findById(id).lean<{ status: string }>())?.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
    const erased = await eraseTenant({ config: stack.config, redis: stack.redis, objects: stack.objects, queues: stack.queues }, 'leaving', 'tenant');
    expect(erased.erased.identity).toBe(1);
    expect(await IdentityModel.exists({ _id: id })).toBeNull();
    expect(await stack.objects.list(`identities/${id}/`, 10)).toEqual([]);
  });

  it('erases everything of an identity on DELETE: nothing of it is left in S3, MongoDB or Redis; its portraits stay', async () => {
    const { id } = await readyIdentity();
    const portrait = (await request(stack.app).post('/jobs').set('Authorization', auth).field('identity_id', id)).body.job_id;
    await stack.waitForJob(portrait);
    expect((await stack.objects.list(`identities/${id}/`, 100)).length).toBeGreaterThan(5);
    expect((await request(stack.app).delete(`/identities/${id}`).set('Authorization', auth)).status).toBe(204);
    expect((await get(`/identities/${id}`)).status).toBe(404);
    expect(await stack.objects.list(`identities/${id}/`, 100)).toEqual([]);
    // The job of the portrait names the identity it was made of; everything else that names it is gone.
    const mongo = (await dumpMongo()).split('\n').filter((line) => line.includes(id));
    expect(mongo.every((line) => line.includes(portrait))).toBe(true);
    expect(await IdentityModel.exists({ _id: id })).toBeNull();
    expect(await JobModel.exists({ _id: portrait })).not.toBeNull();
    const redis = (await dumpRedis(stack.redis, stack.config.QUEUE_PREFIX)).split('\n');
    const pairs = redis.filter((_, i) => i % 2 === 0).map((key, i) => `${key} ${redis[2 * i + 1]}`);
    expect(pairs.filter((pair) => pair.includes(id) && !pair.includes(portrait))).toEqual([]);
  });

  it('refuses a retry of a portrait whose identity was erased', async () => {
    const { id } = await readyIdentity();
    stack.gpu!.script.generate = () => {
      throw new UnrecoverableError('boom');
    };
    try {
      const portrait = (await request(stack.app).post('/jobs').set('Authorization', auth).field('identity_id', id)).body.job_id;
      expect((await stack.waitForJob(portrait)).status).toBe('failed');
      await request(stack.app).delete(`/identities/${id}`).set('Authorization', auth);
      const retry = await request(stack.app).post(`/jobs/${portrait}/retry`).set('Authorization', auth);
      expect([retry.status, retry.body.error.code]).toEqual([409, 'not_retryable']);
    } finally {
      delete stack.gpu!.script.generate;
    }
  });
});
