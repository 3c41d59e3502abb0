/**
 * Every Redis key outside BullMQ's own. Those both languages use are templates: the TypeScript side
 * builds keys from them here; `npm run contracts` writes them to contracts/redis-keys.json, which the
 * Python worker reads (as BullMQ mirrors queue-keys.ts in queue_keys.py), so the layout is typed once.
 */
export const REDIS_KEY_LAYOUT = {
  /** A job's event log (a stream): the orchestrator's transitions and the GPU worker's progress. */
  jobEvents: '{prefix}:events:{jobId}',
  /** Pub/sub channel on which cancelled job ids are broadcast to every worker process. */
  cancelChannel: '{prefix}:cancel',
  /** Marks a cancelled job, so steps that start later refuse to run. */
  cancelledFlag: '{prefix}:cancelled:{jobId}',
} as const;

const fill = (template: string, values: Record<string, string>) => template.replace(/\{(\w+)\}/g, (_, name: string) => values[name]);

export const jobEventsKey = (prefix: string, jobId: string) => fill(REDIS_KEY_LAYOUT.jobEvents, { prefix, jobId });
export const cancelChannel = (prefix: string) => fill(REDIS_KEY_LAYOUT.cancelChannel, { prefix });
export const cancelledKey = (prefix: string, jobId: string) => fill(REDIS_KEY_LAYOUT.cancelledFlag, { prefix, jobId });

// Keys only the TypeScript processes use.
/** Requests of one caller in one minute window (the rate limiter). */
export const rateLimitKey = (prefix: string, who: string, window: number) => `${prefix}:ratelimit:${who}:${window}`;
/** Failed authentication attempts from one client address in its current window (the failed-auth limiter; the key's TTL is the window). */
export const failedAuthKey = (prefix: string, address: string) => `${prefix}:authfail:${address}`;
/** Every queued GPU step's deadline: `<queue>/<stepJobId>` -> epoch ms (a sorted set the orchestrators sweep). */
export const stepDeadlinesKey = (prefix: string) => `${prefix}:step-deadlines`;
/** One workflow metric aggregated across orchestrator processes (a hash). */
export const metricsKey = (prefix: string, name: string) => `${prefix}:metrics:${name}`;
/** A tenant's open event streams, all API processes together: lease id -> expiry (a sorted set). */
export const eventStreamLeasesKey = (prefix: string, tenant: string) => `${prefix}:eventstreams:${tenant}`;
/** Held while a tenant's schedules are counted and one is created. */
export const scheduleLockKey = (prefix: string, tenant: string) => `${prefix}:schedules-lock:${tenant}`;
/** Erasures still to finish (a step was running): JSON {kind, id, tenant, since} -> when to try next (a sorted set the orchestrators sweep). */
export const pendingErasuresKey = (prefix: string) => `${prefix}:erasures-pending`;
/** A tenant's GPU steps queued or running: `<queue>/<stepJobId>` -> when it was queued (a sorted set; fair dispatch counts it). */
export const tenantGpuWorkKey = (prefix: string, tenant: string) => `${prefix}:gpu-work:${tenant}`;
/** GPU units a tenant spent in one budget window (the key's TTL is the rest of the window). */
export const gpuBudgetKey = (prefix: string, tenant: string, window: number) => `${prefix}:gpu-budget:${tenant}:${window}`;
