import type { PortraitState } from '../src/flows/contracts/portraitState';
import { writeJobDocument } from '../src/flows/portrait/jobDocument';
import { applyStepOutcome, markStepQueued, revisionOf, startRetryCycle } from '../src/flows/portrait/stateMachine';
import { createPortraitJob } from '../src/flows/portrait/submission';
import { JobModel, type JobDocument } from '../src/store/jobModel';
import { markUnfinishedFailed } from '../src/store/mongo';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

/** The Job document on the real MongoDB stand-in (FerretDB): a late write never takes it backwards. */
describe('the Job document written behind the orchestrator', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ orchestrator: false, gpu: false });
  });
  afterAll(() => stack.close());

  const newJob = async () => {
    const deps = { config: stack.config, objects: stack.objects, portraitQueue: stack.portraitQueue };
    const reference = { data: await referencePhoto(), contentType: 'image/jpeg', width: 480, height: 600 };
    return createPortraitJob(deps, { tenant: 'local', parameters: { purpose: 'professional_linkedin' } as never, references: [reference] });
  };
  const document = async (state: PortraitState) => (await JobModel.findById(state.jobId).lean<JobDocument>())!;
  // The states the orchestrator writes as attempt 1 goes on: prompt queued, then generate queued.
  const promptQueued = (state: PortraitState) => markStepQueued(state, { step: 'prompt', attempt: 1 }, Date.now());
  const generateQueued = (state: PortraitState) => {
    const prompted = applyStepOutcome(promptQueued(state), { step: 'prompt', attempt: 1 }, { status: 'completed', value: { prompt: 'a portrait' } });
    return markStepQueued(prompted, { step: 'generate', attempt: 1 }, Date.now());
  };

  it('ignores a write that arrives after a later one', async () => {
    const created = await newJob();
    const [earlier, later] = [promptQueued(created), generateQueued(created)];
    expect(revisionOf(earlier, false)).toBeLessThan(revisionOf(later, false));

    await writeJobDocument(later, 'running');
    await writeJobDocument(earlier, 'running');

    const doc = await document(created);
    expect(doc.revision).toBe(revisionOf(later, false));
    expect((doc.attempts as any[])[0].steps).toMatchObject({ prompt: { status: 'completed' }, generate: { status: 'queued' } });
  });

  it('keeps a final status against a running write, even one with a later revision', async () => {
    const created = await newJob();
    await writeJobDocument(promptQueued(created), 'running');
    await markUnfinishedFailed(JobModel, created.jobId, 'could not be orchestrated');

    await writeJobDocument(generateQueued(created), 'running');

    const doc = await document(created);
    expect(doc.status).toBe('failed');
    expect((doc.attempts as any[])[0].steps.generate).toBeUndefined();
  });

  it('writes a retry cycle, whose revisions start above every one of the cycle before', async () => {
    const created = await newJob();
    const failed = { ...generateQueued(created), error: { code: 'step_failed' as const, message: 'generate step failed: boom' } };
    await writeJobDocument(failed, 'failed');
    await JobModel.updateOne({ _id: created.jobId }, { $set: { status: 'pending', cycle: 2 } }); // what POST /jobs/:id/retry claims

    const retried = startRetryCycle(failed, 'failed', 3);
    const secondCycle = markStepQueued(retried, { step: 'prompt', attempt: 2 }, Date.now());
    await writeJobDocument(secondCycle, 'running');

    const doc = await document(created);
    expect(doc).toMatchObject({ status: 'running', cycle: 2, revision: revisionOf(secondCycle, false) });
    expect((doc.attempts as any[]).map((a) => a.number)).toEqual([1, 2]);
  });
});
