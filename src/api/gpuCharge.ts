import type { Response } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../config';
import { chargeGpuBudget } from '../flows/fairness/gpuBudget';
import { ApiError } from './errors';

/** How a refusal explains a cost (gpuCost.ts has the formula). */
const FORMULA = 'GPU units = megapixels × steps × images × candidates × upscale × attempts';

/**
 * Admits a request that costs `units` GPU units (flows/fairness/gpuCost.ts) for `tenant`, or refuses
 * it before anything is queued: 422 `gpu_cost_too_high` over GPU_COST_MAX_PER_REQUEST, 422
 * `over_gpu_budget` when it alone costs more than the tenant's whole budget, 429
 * `gpu_budget_exhausted` with Retry-After (the seconds until the window refills) when the rest of the
 * budget is too small now. Otherwise it is charged; a request that fails after this calls `refund`.
 * `field` names what made the cost (the request, a batch's target) in the refusals.
 */
export async function chargeGpuUnits(deps: { config: Config; redis: Redis }, res: Response, tenant: string, units: number, field?: string): Promise<{ refund(): Promise<void> }> {
  refuseOverGpuCap(deps.config, units, field);
  const charge = await chargeGpuBudget(deps.redis, deps.config, tenant, units);
  if (charge.charged) return charge;
  const budget = { budget_units: charge.budget, window_s: charge.windowS, used: charge.used, cost: units };
  if (charge.never) {
    throw new ApiError(422, 'over_gpu_budget', `this request costs ${units} GPU units, more than this tenant's whole GPU budget of ${charge.budget} units per ${charge.windowS} s (${FORMULA})`, field, budget);
  }
  res.setHeader('Retry-After', String(charge.retryAfterS));
  throw new ApiError(
    429,
    'gpu_budget_exhausted',
    `this tenant's GPU budget of ${charge.budget} units per ${charge.windowS} s has ${charge.budget - charge.used} left and this request costs ${units}; it refills in ${charge.retryAfterS} s`,
    field,
    { ...budget, retry_after_s: charge.retryAfterS },
  );
}

/** 422 `gpu_cost_too_high` for a request (or one schedule firing: `what`) costing more than GPU_COST_MAX_PER_REQUEST. */
export function refuseOverGpuCap(config: Config, units: number, field?: string, what = 'this request costs'): void {
  const cap = config.GPU_COST_MAX_PER_REQUEST;
  if (units <= cap) return;
  throw new ApiError(422, 'gpu_cost_too_high', `${what} ${units} GPU units; one request may cost at most ${cap} (${FORMULA}): ask for fewer or smaller images, fewer steps or items`, field, { cost: units, max_per_request: cap });
}
