import request from 'supertest';
import { referencePhoto } from './support/fixtures';
import { parseSse } from './support/serverSentEvents';
import { startStack, type Stack } from './support/stack';

describe('GET /jobs/:id/events (Server-Sent Events)', () => {
  let stack: Stack;
  beforeAll(async () => {
    // The first attempt is rejected, so the log holds two attempts and a terminal status.
    stack = await startStack({ gpu: { validate: (input) => ({ passed: input.attempt >= 2, score: input.attempt >= 2 ? 0.9 : 0.2, checks: [], feedback: 'softer light' }) } });
  });
  afterAll(() => stack.close());

  const events = (jobId: string, lastEventId?: string) => {
    const req = request(stack.app).get(`/jobs/${jobId}/events`).buffer(true).parse((res, cb) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => cb(null, text));
    });
    return lastEventId ? req.set('Last-Event-ID', lastEventId) : req;
  };

  it('streams every step transition live and ends with the terminal status; Last-Event-ID resumes after it', async () => {
    const submitted = await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg');
    const jobId = submitted.body.job_id;
    const live = await events(jobId); // opened while the job runs; returns when it ends
    expect(live.status).toBe(200);
    expect(live.headers['content-type']).toMatch(/text\/event-stream/);
    const all = parseSse(live.body as string);
    expect(all.at(-1)).toMatchObject({ event: 'status', data: { status: 'completed' } });
    const steps = all.filter((e) => e.event === 'step').map((e) => e.data as { step: string; attempt: number; status: string });
    expect(steps).toEqual(
      expect.arrayContaining([
        { step: 'prompt', attempt: 1, status: 'queued' },
        { step: 'validate', attempt: 1, status: 'completed' },
        { step: 'validate', attempt: 2, status: 'completed' },
      ]),
    );
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);

    const resumed = parseSse((await events(jobId, all[2].id)).body as string);
    expect(resumed).toEqual(all.slice(3));
  });

  it('answers an unknown job with the usual JSON 404', async () => {
    const res = await request(stack.app).get('/jobs/0123456789abcdef01234567/events');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('job_not_found');
  });
});
