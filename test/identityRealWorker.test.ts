import type { ChildProcess } from 'node:child_process';
import { homedir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { IdentityModel } from '../src/store/identityModel';
import { facePhotos, type FacePhotos } from './support/faces';
import { startStack, type Stack } from './support/stack';
import { buildTinyModels, startTinyGpuWorker, stopProcess } from './support/workerProcess';

/**
 * Identities with the real Python worker on the tiny models: the face check POST /identities waits
 * for, with the real detector (dlib) on real faces (scikit-image's astronaut: one face; its coffee
 * cup: none; two astronauts side by side); then an identity learnt end to end (prepare, the tiny
 * SmolVLM's captions, a few training steps on the tiny FLUX.2 klein, its evaluation) and a portrait
 * of it rendered with its LoRA from S3 and gated against its photos.
 */
describe('identities with the real GPU worker', () => {
  let stack: Stack;
  let gpu: ChildProcess;
  let photos: FacePhotos;

  beforeAll(async () => {
    buildTinyModels();
    photos = facePhotos();
    // The test polls the identity's view while it learns: the rate limit is not what it tests.
    stack = await startStack({ gpu: false, config: { RATE_LIMIT_PER_MINUTE: '100000' } });
    // Portraits and training on the tiny klein (a LoRA is applied to the model family it was trained on).
    const klein = join(homedir(), '.cache', 'apex-portraits', 'tiny-models', 'klein');
    gpu = await startTinyGpuWorker(stack.config, { APEX_GPU_PORTRAIT_MODEL: klein, APEX_GPU_TRAINING_MODEL: klein, APEX_GPU_UPSCALER_MODELS: '[]', APEX_GPU_PROGRESS_EVERY_S: '0' });
  });
  afterAll(async () => {
    if (gpu) await stopProcess(gpu);
    await stack.close();
  });

  const check = (photo: Buffer) => request(stack.app).post('/identities/photo-check').attach('photo', photo, 'photo.jpg');

  it('tells one face from none and from two, before anything is uploaded', async () => {
    const one = await check(photos.face);
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ accepted: true, reason: null });
    const [left, top, right, bottom] = one.body.face_box;
    expect(left < right && top < bottom && right <= 512 && bottom <= 512).toBe(true);
    expect((await check(photos.noFace)).body).toEqual({ accepted: false, reason: 'no face found', face_box: null });
    expect((await check(photos.twoFaces)).body).toEqual({ accepted: false, reason: '2 faces found: one person per photo', face_box: null });
    expect(await stack.objects.list('identities/', 10)).toEqual([]);
  });

  it('refuses a set with a photo of no face, naming it, and accepts the same set without it', async () => {
    const refused = await request(stack.app)
      .post('/identities')
      .field('name', 'Eileen')
      .attach('photos', photos.face, '0.jpg')
      .attach('photos', photos.mirrored, '1.jpg')
      .attach('photos', photos.noFace, '2.jpg')
      .attach('photos', photos.brighter, '3.jpg');
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({ code: 'photo_refused', field: 'photos', index: 2, reason: 'no face found' });
    expect(await IdentityModel.countDocuments()).toBe(0);
    expect(await stack.objects.list('identities/', 10)).toEqual([]);

    const accepted = await request(stack.app)
      .post('/identities')
      .field('name', 'Eileen')
      .attach('photos', photos.face, '0.jpg')
      .attach('photos', photos.mirrored, '1.jpg')
      .attach('photos', photos.brighter, '2.jpg')
      .attach('photos', photos.face, '3.jpg');
    expect(accepted.status).toBe(202);
    expect(await IdentityModel.exists({ _id: accepted.body.identity_id })).not.toBeNull();
  });

  it('learns an identity end to end and portrays it with its LoRA, gated against every photo', async () => {
    let req = request(stack.app).post('/identities').field('name', 'Eileen').field('training', JSON.stringify({ steps: 4, resolution: 256 }));
    for (const name of ['face', 'mirrored', 'brighter', 'cropped'] as const) req = req.attach('photos', photos[name], `${name}.jpg`);
    const created = await req;
    expect([created.status, created.body.error]).toEqual([202, undefined]);
    const id = created.body.identity_id;
    let view;
    for (let i = 0; i < 2400; i++) {
      view = (await request(stack.app).get(`/identities/${id}`)).body;
      if (['ready', 'failed', 'cancelled'].includes(view.status)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect({ status: view.status, error: view.error }).toEqual({ status: 'ready', error: null });
    for (const photo of view.photos) expect(photo.caption).toMatch(new RegExp(`^a photo of ${view.trigger_token} person`));
    expect(view.lora).toMatchObject({ steps_done: 4, resumed_from_step: 0 });
    expect(view.evaluation.renders).toHaveLength(6);

    const portrait = await request(stack.app).post('/jobs').field('identity_id', id).field('parameters', JSON.stringify({ resolution: '1k' }));
    expect(portrait.status).toBe(202);
    const job = await stack.waitForJob(portrait.body.job_id, undefined, 300_000);
    expect(job.attempts.length).toBeGreaterThan(0);
    // Noise has no face, so the gate cannot measure a distance; what it measured against is every photo of the identity.
    const identityCheck = (job.attempts as { verdict?: { checks: { name: string; distances?: unknown[] }[] } }[])[0].verdict?.checks.find((c) => c.name === 'identity_distance');
    expect(identityCheck).toBeDefined();
    expect((await request(stack.app).delete(`/identities/${id}`)).status).toBe(204);
    expect(await stack.objects.list(`identities/${id}/`, 10)).toEqual([]);
  }, 600_000);
});
