import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { gpuBudgetKey } from '../redisKeys';
import { tenantLimits } from './tenantLimits';

/**
 * A tenant's GPU budget: at most `budgetUnits` GPU units (gpuCost.ts) per fixed window of
 * GPU_BUDGET_WINDOW_S, counted in Redis so every API process shares it. Checking and charging are
 * one Lua script, so two requests can never both pass on the last units.
 */

/** KEYS[1] the window's counter; ARGV units, budget, ms left in the window. Returns {charged 1|0, units used}. */
const CHARGE = `
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
local units = tonumber(ARGV[1])
if used + units > tonumber(ARGV[2]) then return {0, used} end
redis.call('INCRBY', KEYS[1], units)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, used + units}`;

export type BudgetCharge =
  | { charged: true; units: number; refund(): Promise<void> }
  /** `never`: the request alone costs more than the whole budget; otherwise it fits once the window refills in `retryAfterS`. */
  | { charged: false; budget: number; used: number; windowS: number; retryAfterS: number; never: boolean };

/** Charges `units` to the tenant's budget in the current window, or says why not and when it refills. A tenant without a budget (0) is always charged. */
export async function chargeGpuBudget(redis: Redis, config: Config, tenant: string, units: number, now = Date.now()): Promise<BudgetCharge> {
  const budget = tenantLimits(config, tenant).budgetUnits;
  const noop = { charged: true as const, units, refund: async () => undefined };
  if (budget === 0 || units === 0) return noop;
  const windowMs = config.GPU_BUDGET_WINDOW_S * 1000;
  const window = Math.floor(now / windowMs);
  const msLeft = (window + 1) * windowMs - now;
  const key = gpuBudgetKey(config.QUEUE_PREFIX, tenant, window);
  const [charged, used] = (await redis.eval(CHARGE, 1, key, units, budget, msLeft)) as [number, number];
  // A refund after the window ended must not leave its key behind without an expiry.
  if (charged === 1) return { charged: true, units, refund: async () => void (await redis.multi().decrby(key, units).pexpire(key, msLeft).exec()) };
  return { charged: false, budget, used, windowS: config.GPU_BUDGET_WINDOW_S, retryAfterS: Math.ceil(msLeft / 1000), never: units > budget };
}
