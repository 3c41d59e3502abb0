import { PortraitParameters } from '../src/flows/contracts/portraitParameters';
import { QueueName } from '../src/flows/queues';
import { stepDeadlinesKey } from '../src/flows/redisKeys';
import { commitWorkflowTransaction, openWorkflowTransaction } from '../src/flows/steps/workflowTransaction';
import { STEPS } from '../src/flows/steps/registry';
import { addStepJob } from '../src/flows/steps/stepJobs';
import { startStack, type Stack } from './support/stack';

/**
 * A transition replayed from the same state (an orchestrator that crashed after committing it, or
 * whose job was taken over) queues nothing twice: the step's id is deterministic.
 */
describe('a replayed workflow transition', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ orchestrator: false, gpu: false });
  });
  afterAll(() => stack.close());

  it('adds its step once: one job, one dependency of the parent, one deadline', async () => {
    const parent = await stack.portraitQueue.add('portrait', {} as never, { jobId: 'portrait-replayed' });
    const stepQueue = stack.queues.get(QueueName.prompt);
    const input = STEPS.prompt.input.parse({ jobId: 'a'.repeat(24), attempt: 1, parameters: PortraitParameters.parse({}), referenceImageKey: 'jobs/a/reference.jpg', previous: null });

    for (let run = 0; run < 2; run++) {
      const tx = await openWorkflowTransaction(stack.portraitQueue);
      await addStepJob(tx, stack.config, stepQueue, parent, 'prompt', 'replayed-a1-prompt', input, 1);
      await commitWorkflowTransaction(tx);
    }

    expect(await stepQueue.getJobCounts('prioritized', 'waiting', 'active', 'delayed')).toEqual({ prioritized: 1, waiting: 0, active: 0, delayed: 0 });
    expect(await parent.getDependenciesCount({ unprocessed: true })).toEqual({ unprocessed: 1 });
    expect(await stack.redis.zrange(stepDeadlinesKey(stack.config.QUEUE_PREFIX), '0', '-1')).toEqual(['prompt/replayed-a1-prompt']);
  });
});
