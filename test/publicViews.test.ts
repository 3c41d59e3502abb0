import request from 'supertest';
import type { z } from 'zod';
import { BatchAccepted, BatchList, BatchView } from '../src/api/views/batch';
import { deliveryList } from '../src/api/views/delivery';
import { GenerationList, GenerationView } from '../src/api/views/generation';
import { HealthView } from '../src/api/views/health';
import { JobAccepted, JobList, JobReportView, JobView } from '../src/api/views/job';
import { ScheduleList, ScheduleView } from '../src/api/views/schedule';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

/**
 * The public views are the API's contract (the OpenAPI document is generated from them, the studio
 * is typed by them): every real response parses with its view, and the view keeps every field of it
 * (zod drops the fields a schema does not name, so a field the view forgot makes the two differ).
 */
function expectShape(view: z.ZodType, body: unknown) {
  const parsed = view.safeParse(body);
  expect(parsed.success ? parsed.data : parsed.error.issues).toEqual(body);
}

describe('public views', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({
      config: { MAX_ATTEMPTS: '1' },
      // vibe=calm is rejected until a retry, so one job passes through failed_validation (with its report) to completed.
      gpu: { validate: (input) => ({ passed: input.parameters.vibe !== 'calm' || input.attempt > 1, score: 0.5, checks: [{ name: 'vlm_judgement', passed: true, value: 0.5 }], feedback: 'again' }) },
    });
  });
  afterAll(() => stack.close());
  const api = () => request(stack.app);

  it('describes a portrait job through failed_validation, its report, a retry and completion', async () => {
    const created = await api().post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg').field('parameters', JSON.stringify({ vibe: 'calm' })).expect(202);
    expectShape(JobAccepted, created.body);
    const jobId = created.body.job_id;
    expect((await stack.waitForJob(jobId)).status).toBe('failed_validation');
    const failed = await api().get(`/jobs/${jobId}`).expect(200);
    expect(failed.body.attempts[0].verdict).not.toBeNull();
    expectShape(JobView, failed.body);
    expectShape(JobReportView, (await api().get(`/jobs/${jobId}/report`).expect(200)).body);

    expectShape(JobAccepted, (await api().post(`/jobs/${jobId}/retry`).expect(202)).body);
    expect((await stack.waitForJob(jobId)).status).toBe('completed');
    const completed = await api().get(`/jobs/${jobId}`).expect(200);
    expect(completed.body.result.url).toBe(`/jobs/${jobId}/result`);
    expect(completed.body.history).toHaveLength(1);
    expectShape(JobView, completed.body);
    expectShape(JobList, (await api().get('/jobs').expect(200)).body);
    expectShape(deliveryList('job'), (await api().get(`/jobs/${jobId}/deliveries`).expect(200)).body);
  });

  it('describes a generation, a list of them and their deliveries', async () => {
    const created = await api().post('/generations?wait=20').send({ prompt: 'a lighthouse', return_base64: true }).expect(200);
    expect(created.body.images[0].base64).toEqual(expect.any(String));
    expectShape(GenerationView, created.body);
    const id = created.body.generation_id;
    expectShape(GenerationView, (await api().get(`/generations/${id}`).expect(200)).body);
    expectShape(GenerationList, (await api().get('/generations').expect(200)).body);
    expectShape(deliveryList('generation'), (await api().get(`/generations/${id}/deliveries`).expect(200)).body);
  });

  it('describes a batch from acceptance to its summary', async () => {
    const created = await api().post('/batches').send({ target: { type: 'generations', requests: [{ prompt: 'one' }, { prompt: 'two' }] } }).expect(202);
    expectShape(BatchAccepted, created.body);
    const id = created.body.batch_id;
    const deadline = Date.now() + 60_000;
    let batch = (await api().get(`/batches/${id}`)).body;
    while (batch.summary === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      batch = (await api().get(`/batches/${id}`)).body;
    }
    expect(batch.summary).not.toBeNull();
    expectShape(BatchView, batch);
    expectShape(BatchList, (await api().get('/batches').expect(200)).body);
    expectShape(deliveryList('batch'), (await api().get(`/batches/${id}/deliveries`).expect(200)).body);

  });

  it('describes a schedule, the list of them and the health check', async () => {
    const created = await api().post('/schedules').send({ name: 'nightly', cron: '0 3 * * *', target: { type: 'portraits_from_prefix', prefix: 'nightly/' } }).expect(201);
    expectShape(ScheduleView, created.body);
    expectShape(ScheduleView, (await api().get(`/schedules/${created.body.schedule_id}`).expect(200)).body);
    expectShape(ScheduleList, (await api().get('/schedules').expect(200)).body);
    expectShape(HealthView, (await api().get('/health').expect(200)).body);
  });
});
