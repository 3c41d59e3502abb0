import request from 'supertest';
import { startStack, type Stack } from './support/stack';

const ADMIN_TOKEN = 'operator-token-for-queue-depths';

/** GET /admin/queue-depths, which KEDA scales the GPU pools on (deploy/k8s/gpu-worker-autoscaling.yaml). */
describe('queue depths for the autoscaler', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ gpu: false, orchestrator: false, config: { ADMIN_TOKEN } });
  });
  afterAll(() => stack.close());

  it('counts the steps waiting on each GPU queue, with a priority (as fair dispatch queues them) or without, for operators only', async () => {
    const portraits = stack.queues.get('portrait-generate');
    await portraits.add('generate', {} as never, { priority: 1 });
    await portraits.add('generate', {} as never, { priority: 3 });
    await portraits.add('generate', {} as never);
    await stack.queues.get('train_identity').add('train_identity', {} as never, { priority: 2 });
    await stack.queues.get('generate').add('generate', {} as never, { delay: 60_000 }); // not waiting for a worker yet
    const res = await request(stack.app).get('/admin/queue-depths').auth('keda', ADMIN_TOKEN);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ 'portrait-generate': 3, train_identity: 1, generate: 0, prepare_identity: 0 });
    expect((await request(stack.app).get('/admin/queue-depths')).status).toBe(401);
    expect((await request(stack.app).get('/admin/queue-depths').auth('keda', 'wrong')).status).toBe(401);
  });
});
