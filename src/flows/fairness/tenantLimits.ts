import type { Config } from '../../config';

/** What one tenant may use: its weight in GPU dispatch, its GPU steps in flight, its GPU units per budget window (0: no budget). */
export type TenantLimits = { weight: number; inFlight: number; budgetUnits: number };

/** A tenant's limits: its TENANT_LIMITS entry over the deployment's defaults. */
export function tenantLimits(config: Config, tenant: string): TenantLimits {
  const own = Object.hasOwn(config.TENANT_LIMITS, tenant) ? config.TENANT_LIMITS[tenant] : {};
  return {
    weight: own.weight ?? config.GPU_WEIGHT,
    inFlight: own.inFlight ?? config.GPU_IN_FLIGHT_PER_TENANT,
    budgetUnits: own.budgetUnits ?? config.GPU_BUDGET_UNITS,
  };
}
