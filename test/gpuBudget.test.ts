import request from 'supertest';
import { peakFiringsPerWindow } from '../src/flows/batches/schedules';
import { BatchTarget } from '../src/flows/contracts/batch';
import { chargeGpuBudget } from '../src/flows/fairness/gpuBudget';
import { batchCost, generationCost, portraitCost } from '../src/flows/fairness/gpuCost';
import { GenerationModel } from '../src/store/generationModel';
import { createApiKey } from '../src/store/apiKeyModel';
import { referencePhoto } from './support/fixtures';
import { startStack, type Stack } from './support/stack';

/**
 * What a request costs in GPU units (gpuCost.ts), the per-request cap and each tenant's budget per
 * window (gpuBudget.ts), through the API on the real Redis and MongoDB: what each must refuse and
 * what each must accept, for generations, portraits, batches and schedules.
 */
describe('GPU cost: per-request cap and per-tenant budget', () => {
  let stack: Stack;
  const auth: Record<string, string> = {};
  const CAP = 1000;
  const LIMITS = { spender: { budgetUnits: 100 }, batcher: { budgetUnits: 1000 }, scheduler: { budgetUnits: 5000 }, unmetered: { budgetUnits: 0 } };
  beforeAll(async () => {
    stack = await startStack({
      gpu: false,
      orchestrator: false,
      config: { AUTH_MODE: 'required', SCHEDULE_MIN_INTERVAL_S: '1', GPU_COST_MAX_PER_REQUEST: String(CAP), GPU_BUDGET_UNITS: '1000000', TENANT_LIMITS: JSON.stringify(LIMITS) },
    });
    for (const tenant of ['capped', ...Object.keys(LIMITS)]) auth[tenant] = `Bearer ${(await createApiKey(tenant)).key}`;
  });
  afterAll(() => stack.close());

  const generation = (tenant: string, body: object) => request(stack.app).post('/generations').set('Authorization', auth[tenant]).send({ prompt: 'a lighthouse', ...body });
  const portrait = async (tenant: string, fields: Record<string, string>) => {
    let req = request(stack.app).post('/jobs').set('Authorization', auth[tenant]).attach('image_file', await referencePhoto(), 'me.jpg');
    for (const [name, value] of Object.entries(fields)) req = req.field(name, value);
    return req;
  };
  const batch = (tenant: string, target: object) => request(stack.app).post('/batches').set('Authorization', auth[tenant]).send({ target });
  const schedule = (tenant: string, cron: string, target: object) => request(stack.app).post('/schedules').set('Authorization', auth[tenant]).send({ cron, target });
  const items = (n: number, item: object = {}) => ({ type: 'generations', requests: Array.from({ length: n }, (_, i) => ({ prompt: `item ${i}`, ...item })) });

  describe('the cost formula: megapixels × steps × images × candidates × upscale × attempts', () => {
    it.each([
      [{ width: 1024, height: 1024, num_images: 1 }, 28],
      [{ width: 1024, height: 1024, num_images: 1, steps: 100 }, 100],
      [{ width: 512, height: 512, num_images: 4 }, 28],
      [{ width: 1024, height: 1024, num_images: 4, steps: 100, upscale: 4 }, 1600],
      [{ width: 2048, height: 2048, num_images: 4, steps: 100 }, 1600],
    ])('a generation %j costs %d units', (request, units) => {
      expect(generationCost(request)).toBe(units);
    });

    it.each([
      ['1k', 1, 67],
      ['2k', 1, 268],
      ['4k', 4, 4284],
    ] as const)('a %s portrait with %d candidates over 3 attempts costs %d units', (resolution, candidates, units) => {
      expect(portraitCost({ parameters: { resolution }, candidates }, 3)).toBe(units);
    });

    it('a batch costs its items together; a photo batch costs max_photos portraits', () => {
      expect(batchCost(BatchTarget.parse(items(100)), 3)).toBe(2800);
      expect(batchCost(BatchTarget.parse({ type: 'portraits_from_prefix', max_photos: 10 }), 3)).toBe(670);
    });

    it.each([
      ['* * * * * *', 3600],
      ['* * * * *', 60],
      ['*/5 9 * * *', 12],
      ['0 3 * * *', 1],
      ['0 6 * * 1', 1],
    ])('a cron %s fires at most %d times in an hour', (cron, firings) => {
      expect(peakFiringsPerWindow(cron, 'UTC', new Date(), 3600)).toBe(firings);
    });
  });

  describe(`the per-request cap (${CAP} units)`, () => {
    it.each([
      ['a 2048² generation, 4 images of 100 steps (1600)', () => generation('capped', { width: 2048, height: 2048, num_images: 4, steps: 100 })],
      ['a 1024² generation upscaled 4×, 4 images of 100 steps (1600)', () => generation('capped', { num_images: 4, steps: 100, upscale: 4 })],
      ['a 4k portrait with 4 candidates (4284)', () => portrait('capped', { parameters: JSON.stringify({ resolution: '4k' }), candidates: '4' })],
      ['a batch of 100 generations (2800)', () => batch('capped', items(100))],
      ['a photo batch of up to 100 portraits (6700)', () => batch('capped', { type: 'portraits_from_prefix', max_photos: 100 })],
      ['a schedule whose every firing is a batch of 100 generations (2800)', () => schedule('capped', '0 3 * * *', items(100))],
    ])('refuses %s with 422 gpu_cost_too_high naming the cap', async (_name, send) => {
      const res = await send();
      expect(res.status).toBe(422);
      expect(res.body.error).toMatchObject({ code: 'gpu_cost_too_high', max_per_request: CAP, cost: expect.any(Number) });
      expect(res.body.error.message).toContain(`at most ${CAP}`);
    });

    it.each([
      ['a default generation (28)', () => generation('capped', {})],
      ['a 2048² generation of 100 steps (400)', () => generation('capped', { width: 2048, height: 2048, steps: 100 })],
      ['a 2k portrait (268)', () => portrait('capped', { parameters: JSON.stringify({ resolution: '2k' }) })],
      ['a batch of 30 generations (840)', () => batch('capped', items(30))],
      ['a photo batch of up to 10 portraits (670)', () => batch('capped', { type: 'portraits_from_prefix', max_photos: 10 })],
      ['a daily schedule of a 30-generation batch (840 a firing)', () => schedule('capped', '0 3 * * *', items(30))],
    ])('accepts %s', async (_name, send) => {
      expect((await send()).status).toBeLessThan(300);
    });
  });

  describe('the budget per window', () => {
    it('charges each accepted request; one over what is left is 429 naming the budget and when it refills, and nothing of it is queued', async () => {
      for (let i = 0; i < 3; i++) expect((await generation('spender', {})).status).toBe(202); // 3 × 28 = 84 of 100
      const refused = await generation('spender', {});
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({ code: 'gpu_budget_exhausted', budget_units: 100, window_s: 3600, used: 84, cost: 28 });
      const retryAfter = Number(refused.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(3600);
      expect(refused.body.error.retry_after_s).toBe(retryAfter);
      expect(refused.body.error.message).toMatch(/GPU budget of 100 units per 3600 s has 16 left .* refills in \d+ s/);
      expect(await GenerationModel.countDocuments({ tenant: 'spender' })).toBe(3);
      // What is left still serves a request that fits in it (512² × 2 images: 14 units).
      expect((await generation('spender', { width: 512, height: 512, num_images: 2 })).status).toBe(202);
    });

    it('a request that alone costs more than the whole budget is 422 over_gpu_budget (waiting would not help)', async () => {
      const res = await generation('spender', { steps: 100, num_images: 2 }); // 200 > 100
      expect(res.status).toBe(422);
      expect(res.body.error).toMatchObject({ code: 'over_gpu_budget', budget_units: 100, cost: 200 });
      expect(res.headers['retry-after']).toBeUndefined();
    });

    it('batches are charged whole when created: a second 30-item batch does not fit a 1000-unit budget', async () => {
      expect((await batch('batcher', items(30))).status).toBe(202); // 840
      const refused = await batch('batcher', items(30));
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({ code: 'gpu_budget_exhausted', field: 'target', used: 840, cost: 840 });
      expect((await batch('batcher', items(5))).status).toBe(202); // 140: fits the 160 left
    });

    it('schedules: refused at creation when their firings in a window, with the tenant\'s other schedules, would pass the budget', async () => {
      // 60 firings an hour of one 28-unit item: 1680 of 5000, twice; a third would make 5040.
      expect((await schedule('scheduler', '* * * * *', items(1))).status).toBe(201);
      expect((await schedule('scheduler', '* * * * *', items(1))).status).toBe(201);
      const third = await schedule('scheduler', '* * * * *', items(1));
      expect(third.status).toBe(422);
      expect(third.body.error).toMatchObject({ code: 'schedule_over_gpu_budget', field: 'cron', cost: 1680, committed: 3360, budget_units: 5000 });
      // Every second, even one cheap item: 3600 firings an hour.
      expect((await schedule('scheduler', '* * * * * *', items(1, { width: 256, height: 256 }))).body.error).toMatchObject({ code: 'schedule_over_gpu_budget' });
      // A daily firing of the same fits what is left.
      expect((await schedule('scheduler', '0 3 * * *', items(1))).status).toBe(201);
    });

    it('a tenant without a budget (0) is never refused for it, however much it asks', async () => {
      for (let i = 0; i < 3; i++) expect((await batch('unmetered', items(30))).status).toBe(202);
      expect((await schedule('unmetered', '* * * * * *', items(30))).status).toBe(201);
    });

    it('charging is atomic across parallel requests, and the budget refills with the next window', async () => {
      const config = { ...stack.config, TENANT_LIMITS: { racer: { budgetUnits: 100, inFlight: 1000, weight: 1 } } };
      const now = Date.now();
      const charges = await Promise.all(Array.from({ length: 25 }, () => chargeGpuBudget(stack.redis, config, 'racer', 10, now)));
      expect(charges.filter((c) => c.charged)).toHaveLength(10);
      const refused = charges.find((c) => !c.charged)!;
      expect(refused).toMatchObject({ charged: false, budget: 100, used: 100, never: false });
      const nextWindow = (Math.floor(now / 3_600_000) + 1) * 3_600_000;
      expect((await chargeGpuBudget(stack.redis, config, 'racer', 10, nextWindow)).charged).toBe(true);
    });
  });
});
