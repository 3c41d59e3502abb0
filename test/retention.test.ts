import type { Model } from 'mongoose';
import request from 'supertest';
import { Job } from 'bullmq';
import { runRetention, type RetentionSweep } from '../src/flows/erasure/retention';
import type { ErasureDeps } from '../src/flows/erasure/erasureTarget';
import { jobObjectsPrefix } from '../src/flows/ids';
import { QueueName } from '../src/flows/queues';
import { retryPortraitJob } from '../src/flows/portrait/submission';
import { renderWorkflowMetrics } from '../src/flows/workflowMetrics';
import { BatchModel } from '../src/store/batchModel';
import { GenerationModel } from '../src/store/generationModel';
import { JobModel, type JobDocument } from '../src/store/jobModel';
import { referencePhoto, SEED_PARAMETERS } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

const DAY = 24 * 3600 * 1000;
const MINUTE = 60 * 1000;
/** The test's clock: far enough ahead that the real sweep (on the real clock) finds nothing of ours due. */
const NOW = new Date(Date.now() + 365 * DAY);
const endedAgo = (ms: number) => new Date(NOW.getTime() - ms);

type Expected = 'kept' | 'inputs erased' | 'erased';

describe('retention (RETENTION_INPUTS_DAYS=1, RETENTION_OUTPUTS_DAYS=30, on a clock the test controls)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(() => stack.close());

  const api = () => request(stack.app);
  const deps = (config = stack.config): ErasureDeps => ({ config, redis: stack.redis, objects: stack.objects, queues: stack.queues, now: () => NOW });

  async function finishedJob(): Promise<string> {
    const res = await api().post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg').field('parameters', JSON.stringify({ ...SEED_PARAMETERS, resolution: '1k' }));
    await stack.waitForJob(res.body.job_id);
    return res.body.job_id;
  }
  async function finishedGeneration(): Promise<string> {
    const res = await api().post('/generations?wait=20').send({ prompt: 'a lighthouse', width: 256, height: 256 });
    expect(res.body.status).toBe('completed');
    return res.body.generation_id;
  }
  /** Moves a resource's end on the test's clock; `null`: it has not ended. */
  const endAt = (model: Model<any>, id: string, at: Date | null) =>
    model.updateOne({ _id: id }, at ? { $set: { finishedAt: at } } : { $set: { status: 'running' }, $unset: { finishedAt: 1 } });
  const objectsOf = async (id: string) => (await stack.objects.list(jobObjectsPrefix(id), 100)).map((o) => o.key);

  it('erases what is due and nothing else: inputs after a day, everything after 30 days, never what has not ended', async () => {
    const jobs: [string, Date | null, Expected][] = [
      ['ended a minute short of a day ago', endedAgo(DAY - MINUTE), 'kept'],
      ['ended a day and a minute ago', endedAgo(DAY + MINUTE), 'inputs erased'],
      ['ended a minute short of 30 days ago', endedAgo(30 * DAY - MINUTE), 'inputs erased'],
      ['ended 30 days and a minute ago', endedAgo(30 * DAY + MINUTE), 'erased'],
      ['not ended, created long ago', null, 'kept'],
    ];
    const jobIds: string[] = [];
    for (const [, at] of jobs) {
      const id = await finishedJob();
      await endAt(JobModel, id, at);
      jobIds.push(id);
    }
    const generations: [Date, Expected][] = [
      [endedAgo(30 * DAY - MINUTE), 'kept'],
      [endedAgo(30 * DAY + MINUTE), 'erased'],
    ];
    const generationIds: string[] = [];
    for (const [at] of generations) {
      const id = await finishedGeneration();
      await endAt(GenerationModel, id, at);
      generationIds.push(id);
    }
    // A batch past its period is erased with its child, whose own end is recent.
    const batchId = (await api().post('/batches').send({ target: { type: 'generations', requests: [{ prompt: 'a boat', width: 256, height: 256 }] } })).body.batch_id;
    let batch = (await api().get(`/batches/${batchId}`)).body;
    for (let i = 0; i < 300 && batch.status !== 'completed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      batch = (await api().get(`/batches/${batchId}`)).body;
    }
    await endAt(BatchModel, batchId, endedAgo(30 * DAY + MINUTE));
    const child = batch.items[0].id;
    await endAt(GenerationModel, child, endedAgo(MINUTE));
    const photosBefore = await Promise.all(jobIds.map(objectsOf));

    const sweep = await runRetention(deps());
    expect(sweep).toEqual({ outputs: { batch: 1, job: 1, generation: 2 }, inputs: 2 });

    for (const [index, [name, , expected]] of jobs.entries()) {
      const id = jobIds[index];
      const doc = await JobModel.findById(id).lean<JobDocument>();
      const objects = await objectsOf(id);
      const outcome: Expected = !doc ? 'erased' : doc.inputsErasedAt ? 'inputs erased' : 'kept';
      expect([name, outcome]).toEqual([name, expected]);
      if (expected === 'erased') expect(objects).toEqual([]);
      if (expected === 'kept') expect(objects).toEqual(photosBefore[index]);
      if (expected === 'inputs erased') {
        // The photo is gone; the attempts' images stay until the outputs' period, and the job cannot be retried.
        expect(objects).toEqual(photosBefore[index].filter((k) => !k.includes('/reference.')));
        expect(objects.length).toBeGreaterThan(0);
        expect((await api().get(`/jobs/${id}`)).status).toBe(200);
      }
    }
    for (const [index, [, expected]] of generations.entries()) {
      expect([index, (await api().get(`/generations/${generationIds[index]}`)).status]).toEqual([index, expected === 'erased' ? 404 : 200]);
    }
    expect((await api().get(`/batches/${batchId}`)).status).toBe(404);
    expect((await api().get(`/generations/${child}`)).status).toBe(404);

    // Nothing more is due at the same moment.
    expect(await runRetention(deps())).toEqual({ outputs: { batch: 0, job: 0, generation: 0 }, inputs: 0 });
    const metrics = await renderWorkflowMetrics(stack.redis, stack.config.QUEUE_PREFIX);
    expect(metrics).toContain('apex_erasures_total{kind="job",trigger="retention"} 1');
    expect(metrics).toContain('apex_erasures_total{kind="job_inputs",trigger="retention"} 2');
    expect(metrics).toContain('apex_erasures_total{kind="generation",trigger="retention"} 2');
  });

  it('a job whose photo was erased cannot be retried', async () => {
    const id = await finishedJob();
    await JobModel.updateOne({ _id: id }, { $set: { status: 'failed' } });
    await endAt(JobModel, id, endedAgo(2 * DAY));
    expect(await runRetention(deps())).toMatchObject({ inputs: 1 });
    const retry = await api().post(`/jobs/${id}/retry`);
    expect([retry.status, retry.body.error.code]).toEqual([409, 'not_retryable']);
    expect(retry.body.error.message).toMatch(/erased/); // the photo's erasure, not 'only failed jobs'
  });

  it('a retry that read the job before its photo was erased starts nothing', async () => {
    const id = await finishedJob();
    await JobModel.updateOne({ _id: id }, { $set: { status: 'failed' } });
    await endAt(JobModel, id, endedAgo(2 * DAY));
    const readBefore = (await JobModel.findById(id).lean<JobDocument>())!;
    expect(await runRetention(deps())).toMatchObject({ inputs: 1 });
    expect(await retryPortraitJob({ config: stack.config, objects: stack.objects, portraitQueue: stack.portraitQueue }, readBefore as never)).toBe(false);
    expect((await JobModel.findById(id).lean<JobDocument>())!.status).toBe('failed');
  });

  it('a period of 0 keeps that data for good', async () => {
    const id = await finishedJob();
    await endAt(JobModel, id, endedAgo(1000 * DAY));
    const before = await objectsOf(id);
    expect(await runRetention(deps({ ...stack.config, RETENTION_INPUTS_DAYS: 0, RETENTION_OUTPUTS_DAYS: 0 }))).toEqual({ outputs: { batch: 0, job: 0, generation: 0 }, inputs: 0 });
    expect(await objectsOf(id)).toEqual(before);
    expect(await JobModel.exists({ _id: id })).not.toBeNull();
  });

  it('the orchestrator role runs the sweep from a BullMQ job scheduler every RETENTION_SWEEP_S', async () => {
    const queue = stack.queues.get(QueueName.retention);
    let scheduler;
    for (let i = 0; i < 100 && !scheduler; i++) {
      scheduler = await queue.getJobScheduler('retention');
      if (!scheduler) await new Promise((r) => setTimeout(r, 50));
    }
    expect(scheduler).toMatchObject({ every: stack.config.RETENTION_SWEEP_S * 1000 });
  });

  it('the orchestrator role runs a sweep added to its retention queue, on the real clock', async () => {
    const id = await finishedJob();
    await endAt(JobModel, id, new Date(Date.now() - 2 * DAY));
    const queue = stack.queues.get(QueueName.retention);
    const added = await queue.add('sweep', {});
    let job = await Job.fromId<object, RetentionSweep>(queue, added.id!);
    for (let i = 0; i < 300 && !(await job!.isCompleted()) && !(await job!.isFailed()); i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = await Job.fromId<object, RetentionSweep>(queue, added.id!);
    }
    expect(job!.failedReason).toBeUndefined();
    expect(job!.returnvalue.inputs).toBeGreaterThanOrEqual(1);
    expect((await JobModel.findById(id).lean<JobDocument>())!.inputsErasedAt).toBeInstanceOf(Date);
  });
});
