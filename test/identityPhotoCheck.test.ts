import { execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { IdentityModel } from '../src/store/identityModel';
import { startStack, type Stack } from './support/stack';
import { buildTinyModels, GPU_PYTHON, GPU_WORKER, startProcess, stopProcess } from './support/workerProcess';

/**
 * The face check POST /identities waits for, with the real Python worker's detector (dlib) on real
 * faces: scikit-image's astronaut (one face) and coffee cup (none), and both side by side (two).
 */
describe('identity photos checked by the real face detector', () => {
  let stack: Stack;
  let gpu: ChildProcess;
  const photos: Record<'face' | 'mirrored' | 'brighter' | 'noFace' | 'twoFaces', Buffer> = {} as never;

  beforeAll(async () => {
    buildTinyModels();
    const dir = mkdtempSync(join(tmpdir(), 'identity-photos-'));
    const script = `
from PIL import Image, ImageEnhance, ImageOps
from skimage import data
a = Image.fromarray(data.astronaut())
a.save("${dir}/face.jpg"); ImageOps.mirror(a).save("${dir}/mirrored.jpg"); ImageEnhance.Brightness(a).enhance(1.2).save("${dir}/brighter.jpg")
Image.fromarray(data.coffee()).save("${dir}/noFace.jpg")
both = Image.new("RGB", (a.width * 2, a.height)); both.paste(a, (0, 0)); both.paste(ImageOps.mirror(a), (a.width, 0)); both.save("${dir}/twoFaces.jpg")`;
    execFileSync(GPU_PYTHON, ['-c', script], { cwd: GPU_WORKER });
    for (const name of ['face', 'mirrored', 'brighter', 'noFace', 'twoFaces'] as const) photos[name] = readFileSync(join(dir, `${name}.jpg`));
    stack = await startStack({ gpu: false });
    gpu = await startProcess(GPU_PYTHON, ['-m', 'apex_gpu_worker', '--role', 'vlm', '--queues', 'check_identity_photos'], {
      cwd: GPU_WORKER,
      config: stack.config,
      ready: 'GPU worker ready',
      env: { HF_HUB_OFFLINE: '1' },
    });
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
});
