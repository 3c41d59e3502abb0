import request from 'supertest';
import { stepJobId } from '../src/flows/ids';
import { QueueName, stepQueue } from '../src/flows/queues';
import { tenantGpuWorkKey } from '../src/flows/redisKeys';
import { connectRedis } from '../src/redis';
import { createApiKey } from '../src/store/apiKeyModel';
import { referencePhoto } from './support/fixtures';
import { ScriptedGpuWorker } from './support/scriptedGpuWorker';
import { startStack, type Stack } from './support/stack';

/**
 * Fair dispatch of GPU steps between tenants (src/flows/fairness/fairDispatch.ts), through the API,
 * the real orchestrators and BullMQ on Redis, with a GPU double started only once every tenant's
 * work is queued: the order it takes the steps in is the dispatch order.
 */
describe('fair dispatch of GPU steps between tenants', () => {
  let stack: Stack;
  const keys: Record<string, string> = {};
  const tenantOfGeneration = new Map<string, string>();
  beforeAll(async () => {
    stack = await startStack({
      gpu: false,
      config: { AUTH_MODE: 'required', TENANT_LIMITS: JSON.stringify({ heavy: { weight: 2 }, capped: { inFlight: 2 } }) },
    });
    for (const tenant of ['alpha', 'beta', 'gamma', 'heavy', 'capped', 'solo', 'painter']) keys[tenant] = `Bearer ${(await createApiKey(tenant)).key}`;
  });
  afterAll(() => stack.close());

  const generateQueue = () => stack.queues.get(QueueName.generate);

  /** A small generation for `tenant`; resolves once its generate step waits in the GPU queue (as a prioritized job), so each one's count is read after the last one's. */
  async function queueGeneration(tenant: string, waitForStep = true): Promise<string> {
    const res = await request(stack.app).post('/generations').set('Authorization', keys[tenant]).send({ prompt: `${tenant} lighthouse`, width: 256, height: 256 });
    expect(res.status).toBe(202);
    const id = res.body.generation_id as string;
    tenantOfGeneration.set(id, tenant);
    for (let i = 0; waitForStep && i < 400; i++) {
      const state = await generateQueue().getJobState(stepJobId(id, 'generate'));
      if (state === 'prioritized') return id;
      await new Promise((r) => setTimeout(r, 25));
    }
    if (waitForStep) throw new Error(`the generate step of ${id} was never queued`);
    return id;
  }

  /** Starts a GPU double with `concurrency` workers on the generate queue and waits until it has run every one of `ids`; returns the tenants in the order it took them. */
  async function runAll(ids: string[], concurrency = 1, script: ConstructorParameters<typeof ScriptedGpuWorker>[3] = {}) {
    const connection = connectRedis(stack.config.REDIS_URL);
    const gpu = new ScriptedGpuWorker(stack.config, connection, stack.objects, script, ['generate']).start(concurrency);
    try {
      for (let i = 0; i < 1200 && !ids.every((id) => gpu.callsFor(id).length > 0); i++) await new Promise((r) => setTimeout(r, 25));
      // Every outcome folded (no tenant counts a step any more), so the next test starts from nothing in flight.
      const tenants = [...new Set(ids.map((id) => tenantOfGeneration.get(id)!))];
      const inFlight = () => Promise.all(tenants.map((t) => stack.redis.zcard(tenantGpuWorkKey(stack.config.QUEUE_PREFIX, t))));
      for (let i = 0; i < 400 && (await inFlight()).some((n) => n > 0); i++) await new Promise((r) => setTimeout(r, 25));
      expect(await inFlight()).toEqual(tenants.map(() => 0));
      return gpu.calls.filter((c) => ids.includes(c.input.jobId)).map((c) => tenantOfGeneration.get(c.input.jobId));
    } finally {
      await gpu.close();
      connection.disconnect();
    }
  }

  const queueMany = async (plan: [string, number][]) => {
    const ids: string[] = [];
    for (const [tenant, count] of plan) for (let i = 0; i < count; i++) ids.push(await queueGeneration(tenant));
    return ids;
  };

  it('two tenants take turns whatever order they queued in: alpha queued 4 first, beta 2 after, beta is not served last', async () => {
    const ids = await queueMany([['alpha', 4], ['beta', 2]]);
    expect(await runAll(ids)).toEqual(['alpha', 'beta', 'alpha', 'beta', 'alpha', 'alpha']);
  });

  it('three tenants take turns: 5, 3 and 2 queued one tenant after another are served round-robin', async () => {
    const ids = await queueMany([['alpha', 5], ['beta', 3], ['gamma', 2]]);
    expect(await runAll(ids)).toEqual(['alpha', 'beta', 'gamma', 'alpha', 'beta', 'gamma', 'alpha', 'beta', 'alpha', 'alpha']);
  });

  it('a tenant with weight 2 gets two steps per turn', async () => {
    const ids = await queueMany([['heavy', 4], ['beta', 2]]);
    expect(await runAll(ids)).toEqual(['heavy', 'heavy', 'beta', 'heavy', 'heavy', 'beta']);
  });

  it('a lone tenant still uses the whole pool: its 6 steps run 3 at a time on 3 workers', async () => {
    const ids = await queueMany([['solo', 6]]);
    let running = 0;
    let most = 0;
    const slowGenerate = async (input: any, job: any) => {
      running++;
      most = Math.max(most, running);
      await new Promise((r) => setTimeout(r, 300));
      running--;
      return connectionless.defaults.generate(input, job);
    };
    const connectionless = new ScriptedGpuWorker(stack.config, {}, stack.objects);
    expect(await runAll(ids, 3, { generate: slowGenerate })).toHaveLength(6);
    expect(most).toBe(3);
  });

  it("a step a transition folds no longer counts: a lone portrait's generate step, queued as its prompt is folded, is first in line (priority 1)", async () => {
    const res = await request(stack.app).post('/jobs').set('Authorization', keys.painter).attach('image_file', await referencePhoto(), 'me.jpg');
    expect(res.status).toBe(202);
    const connection = connectRedis(stack.config.REDIS_URL);
    const gpu = new ScriptedGpuWorker(stack.config, connection, stack.objects, {}, ['prompt']).start(1);
    try {
      const generate = stack.queues.get(stepQueue('generate', 'portrait'));
      let step;
      for (let i = 0; i < 400 && !(step = await generate.getJob(stepJobId(res.body.job_id, 'generate', 1))); i++) await new Promise((r) => setTimeout(r, 25));
      expect(step?.opts.priority).toBe(1);
      expect(await stack.redis.zrange(tenantGpuWorkKey(stack.config.QUEUE_PREFIX, 'painter'), '0', '-1')).toEqual([`${generate.name}/${step!.id}`]);
    } finally {
      await gpu.close();
      connection.disconnect();
    }
  });

  it('a tenant at its cap of GPU steps in flight queues no more until one ends; every one of its generations still completes', async () => {
    const capped = [];
    for (let i = 0; i < 5; i++) capped.push(await queueGeneration('capped', false));
    const free = await queueMany([['alpha', 3]]);
    // Long enough for every orchestrator job to have tried to queue its step (they retry each second).
    await new Promise((r) => setTimeout(r, 1500));
    const queued = await Promise.all(capped.map((id) => generateQueue().getJobState(stepJobId(id, 'generate'))));
    expect(queued.filter((state) => state === 'prioritized')).toHaveLength(2);
    expect(queued.filter((state) => state === 'unknown')).toHaveLength(3);
    const order = await runAll([...capped, ...free], 2);
    expect(order.filter((t) => t === 'capped')).toHaveLength(5);
    for (const id of capped) {
      for (let i = 0; i < 200; i++) {
        const res = await request(stack.app).get(`/generations/${id}`).set('Authorization', keys.capped);
        if (res.body.status === 'completed') break;
        await new Promise((r) => setTimeout(r, 25));
      }
      expect((await request(stack.app).get(`/generations/${id}`).set('Authorization', keys.capped)).body.status).toBe('completed');
    }
  });
});
