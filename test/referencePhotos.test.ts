import request from 'supertest';
import { JobModel, type JobDocument } from '../src/store/jobModel';
import { buildStepInput } from '../src/flows/portrait/stateMachine';
import { PortraitState } from '../src/flows/contracts/portraitState';
import { referencePhoto, SEED_PARAMETERS } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

type Photo = { data: Buffer; name: string };
const photo = async (format: 'jpeg' | 'png' | 'webp', width = 480): Promise<Photo> => ({ data: await referencePhoto({ format, width }), name: `me.${format}` });

function post(stack: Stack, photos: Photo[]) {
  let req = request(stack.app).post('/jobs').field('parameters', JSON.stringify(SEED_PARAMETERS));
  for (const p of photos) req = req.attach('image_file', p.data, p.name);
  return req;
}

describe('POST /jobs with several reference photos', () => {
  let stack: Stack;
  afterEach(() => stack?.close());

  it.each([
    { name: 'one photo, as before', formats: ['jpeg'] as const },
    { name: 'two photos, JPEG and PNG', formats: ['jpeg', 'png'] as const },
    { name: 'four photos, mixed JPEG, PNG and WebP', formats: ['webp', 'jpeg', 'png', 'webp'] as const },
  ])('accepts $name and stores every one, in order', async ({ formats }) => {
    stack = await startStack({ gpu: false, orchestrator: false });
    const photos = await Promise.all(formats.map((f, i) => photo(f, 400 + 40 * i)));
    const created = await post(stack, photos);
    expect(created.status).toBe(202);
    const jobId = created.body.job_id;

    const doc = (await JobModel.findById(jobId).lean<JobDocument>())!;
    expect(doc.references!.map((r) => [r.contentType, r.width])).toEqual(formats.map((f, i) => [`image/${f}`, 400 + 40 * i]));
    expect(doc.reference!.key).toBe(doc.references![0].key);
    for (const r of doc.references!) expect(await stack.objects.getBuffer(r.key)).toBeDefined();
    const view = (await request(stack.app).get(`/jobs/${jobId}`)).body;
    expect(view.reference_count).toBe(formats.length);
    expect(view.reference_image.key).toBe(doc.reference!.key);
  });

  it.each([
    { name: 'a fifth photo', photos: async () => Promise.all([1, 2, 3, 4, 5].map(() => photo('jpeg'))), status: 400, code: 'too_many_files', index: 4 },
    {
      name: 'one corrupt photo among valid ones',
      photos: async () => [await photo('jpeg'), { data: (await photo('jpeg')).data.subarray(0, 2000), name: 'cut.jpg' }, await photo('png')],
      status: 400,
      code: 'unreadable_image',
      index: 1,
    },
    {
      name: 'one that is not an image',
      photos: async () => [await photo('png'), await photo('webp'), { data: Buffer.from('not a photo at all, only words'), name: 'me.jpg' }],
      status: 415,
      code: 'unsupported_image_type',
      index: 2,
    },
    {
      name: 'one photo above the byte limit',
      photos: async () => [await photo('png'), { data: Buffer.alloc(300 * 1024, 1), name: 'huge.jpg' }],
      status: 413,
      code: 'file_too_large',
      index: 1,
    },
  ])('refuses $name, naming image_file and its index, and stores nothing', async ({ photos, status, code, index }) => {
    stack = await startStack({ gpu: false, orchestrator: false, config: { MAX_UPLOAD_BYTES: String(256 * 1024) } });
    const refused = await post(stack, await photos());
    expect(refused.status).toBe(status);
    expect(refused.body.error).toMatchObject({ code, field: 'image_file', index });
    expect(refused.body.error.message).toContain(`image_file[${index}]`);
    expect(await JobModel.countDocuments()).toBe(0);
    expect(await stack.objects.list('jobs/', 10)).toEqual([]);
  });

  it('hands every photo to generate and validate, the first as referenceImageKey', async () => {
    stack = await startStack();
    const photos = [await photo('jpeg'), await photo('png'), await photo('webp')];
    const created = await post(stack, photos);
    expect(created.status).toBe(202);
    const jobId = created.body.job_id;
    const done = await stack.waitForJob(jobId);
    expect(done.status).toBe('completed');

    const keys = (done.references as { key: string }[]).map((r) => r.key);
    expect(keys).toHaveLength(3);
    for (const step of ['generate', 'validate'] as const) {
      const [call] = stack.gpu!.callsFor(jobId, step);
      expect(call.input.referenceImageKeys).toEqual(keys);
      expect(call.input.referenceImageKey).toBe(keys[0]);
    }
    expect(stack.gpu!.callsFor(jobId, 'prompt')[0].input.referenceImageKey).toBe(keys[0]);
  });
});

describe('a portrait job queued before several photos', () => {
  it('still hands its one photo to generate and validate', () => {
    const state = PortraitState.parse({
      jobId: 'a'.repeat(24),
      parameters: SEED_PARAMETERS,
      referenceImageKey: `jobs/${'a'.repeat(24)}/reference.jpg`,
      maxAttempts: 2,
      attempts: [{ number: 1, status: 'running', seed: 1, prompt: 'p', images: [{ key: 'k/0.png', width: 1, height: 1, contentType: 'image/png' }], steps: {} }],
    });
    for (const step of ['generate', 'validate'] as const) {
      const input = buildStepInput(state, { step, attempt: 1 }) as { referenceImageKey: string; referenceImageKeys: string[] };
      expect(input.referenceImageKeys).toEqual([state.referenceImageKey]);
      expect(input.referenceImageKey).toBe(state.referenceImageKey);
    }
  });
});
