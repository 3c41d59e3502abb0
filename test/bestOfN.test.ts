import request from 'supertest';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

/** Best of N: `candidates` images per attempt in one generate call; validate judges each, the best is kept. */
describe('best of N candidates per attempt', () => {
  let stack: Stack;
  const SCORES = [0.4, 0.9, 0.6];
  beforeAll(async () => {
    stack = await startStack({
      gpu: {
        // Judges each candidate like the Python step does, keeping the best-scored one.
        validate: ({ imageKeys }) => {
          const candidates = imageKeys.map((imageKey, i) => ({ imageKey, passed: true, score: SCORES[i] ?? 0.5, checks: [], feedback: `candidate ${i}` }));
          const best = candidates.reduce((b, c, i) => (c.score > candidates[b].score ? i : b), 0);
          const { imageKey: _key, ...verdict } = candidates[best];
          return { ...verdict, best, candidates };
        },
      },
    });
  });
  afterAll(() => stack.close());

  const submit = async (candidates?: string) => {
    const req = request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg');
    return candidates === undefined ? req : req.field('candidates', candidates);
  };

  it('renders every candidate in one call, validates them all and returns the best one', async () => {
    const res = await submit('3');
    expect(res.status).toBe(202);
    const jobId = res.body.job_id;
    expect((await stack.waitForJob(jobId)).status).toBe('completed');
    const [generate] = stack.gpu!.callsFor(jobId, 'generate');
    expect(generate.input.numImages).toBe(3);
    const [validate] = stack.gpu!.callsFor(jobId, 'validate');
    const keys = [0, 1, 2].map((i) => `jobs/${jobId}/attempts/1/${i}.png`);
    expect(validate.input.imageKeys).toEqual(keys);
    const view = (await request(stack.app).get(`/jobs/${jobId}`)).body;
    expect(view.candidates).toBe(3);
    expect(view.result).toMatchObject({ attempt: 1, image_key: keys[1], score: 0.9 });
    expect(view.attempts[0].verdict.candidates.map((c: { imageKey: string; score: number }) => [c.imageKey, c.score])).toEqual(keys.map((k, i) => [k, SCORES[i]]));
    const best = await stack.objects.getBuffer(keys[1]);
    for (const path of [`/jobs/${jobId}/result`, `/jobs/${jobId}/attempts/1/image`]) {
      const image = await request(stack.app).get(path).buffer(true);
      expect(Buffer.compare(image.body, best!)).toBe(0);
    }
  });

  it('renders one image per attempt unless asked', async () => {
    const jobId = (await submit()).body.job_id;
    await stack.waitForJob(jobId);
    expect(stack.gpu!.callsFor(jobId, 'generate')[0].input.numImages).toBe(1);
    expect((await request(stack.app).get(`/jobs/${jobId}`)).body.result.image_key).toBe(`jobs/${jobId}/attempts/1/0.png`);
  });

  it.each(['0', '5', 'x', '1.5', '-1'])('refuses candidates=%s naming the field', async (candidates) => {
    const res = await submit(candidates);
    expect([res.status, res.body.error.code, res.body.error.field]).toEqual([400, 'invalid_candidates', 'candidates']);
  });

  it.each(['1', '2', '4'])('accepts candidates=%s', async (candidates) => {
    expect((await submit(candidates)).status).toBe(202);
  });
});
