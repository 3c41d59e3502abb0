import request from 'supertest';
import { JobModel, type JobDocument } from '../src/store/jobModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

describe('GET /jobs/:id while the Job document lags', () => {
  let stack: Stack;
  afterAll(() => stack.close());

  it('shows the step that runs from the orchestrator state, and the document once the job ends', async () => {
    let finishGenerate: () => void = () => undefined;
    stack = await startStack({
      gpu: {
        generate: async (input) => {
          await new Promise<void>((resolve) => (finishGenerate = resolve));
          return { images: [{ key: `${input.outputPrefix}/0.png`, width: input.width, height: input.height, contentType: 'image/png' }], seed: input.seed, timings: {} };
        },
      },
    });
    const jobId = (await request(stack.app).post('/jobs').attach('image_file', await referencePhoto(), 'me.jpg')).body.job_id as string;
    // Once generate is queued, take the document back to before the job started: the orchestrator
    // writes it no more while generate runs, so it lags the job by the whole attempt.
    const view = async () => (await request(stack.app).get(`/jobs/${jobId}`)).body;
    while (!(await view()).attempts[0]?.steps.generate) await new Promise((r) => setTimeout(r, 25));
    await JobModel.updateOne({ _id: jobId }, { $set: { status: 'pending', attempts: [], revision: 0 } });

    const live = await view();
    expect(live.status).toBe('running');
    expect(live.attempts[0].steps).toMatchObject({ prompt: { status: 'completed' }, generate: { status: 'queued' } });
    expect((await JobModel.findById(jobId).lean<JobDocument>())!.attempts).toEqual([]);

    finishGenerate();
    await stack.waitForJob(jobId);
    const finished = await view();
    expect(finished.status).toBe('completed');
    expect(finished.attempts[0].steps.validate.status).toBe('completed');
  });
});
