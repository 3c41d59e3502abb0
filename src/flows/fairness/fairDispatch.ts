import { PRIORITY_LIMIT } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config';
import { tenantGpuWorkKey } from '../redisKeys';
import type { GpuQueue } from '../steps/registry';
import type { WorkflowTransaction } from '../steps/workflowTransaction';
import { tenantLimits } from './tenantLimits';

/**
 * Fair dispatch of GPU steps between tenants, on open-source BullMQ (which has no groups): every
 * step is queued with a priority, `1 + floor(depth / weight)`, where depth is how many GPU steps its
 * tenant has queued or running (all GPU queues together) when it is queued. BullMQ takes the lowest
 * priority first and, within one, the oldest; so a tenant with nothing in flight goes ahead of a
 * tenant's 100th queued step, and tenants with work waiting are served in turn (their 1st steps, then
 * their 2nd, ...), a weight-2 tenant two steps per turn. A lone tenant's steps still go to every free
 * worker: a priority only orders the waiting steps, it never holds one back. The Python worker takes
 * prioritized jobs with the same Lua scripts (moveToActive), so nothing changes on its side.
 *
 * Chosen over an admission layer that holds every step in the orchestrator until a tenant's turn:
 * that costs a poll or a wake-up per held step and a second queue to keep consistent with BullMQ's;
 * a priority costs one Redis round trip per step (this count) and is exact within one GPU step
 * (docs/benchmarks.md, bench:fairness). The admission layer is kept for the one thing priorities
 * cannot do, a per-tenant cap on steps in flight (`inFlight`): a step over it is not queued yet.
 *
 * Within one tenant the order is by count, not strictly first-in first-out: once some of its steps
 * have ended, its next step's priority is lower than that of its older steps queued deep in a flood
 * (a portrait's later steps go ahead of another portrait's first), which only reorders its own work.
 *
 * The count is a sorted set per tenant (member `<queue>/<stepJobId>`, score when it was queued),
 * added by the script that admits the step and removed by the transaction that folds its outcome;
 * a replay finds the same member.
 * A member left behind (its workflow erased while the step waited) is dropped a day after it was
 * queued, longer than the default deadlines of every step, and an idle tenant's set expires a day
 * after its last step.
 */

/** A member queued this long ago is a leftover: any step's watchdog released it long before. */
const STALE_AFTER_MS = 24 * 3600_000;

const member = (queue: GpuQueue, stepJobId: string) => `${queue}/${stepJobId}`;

export type StepDispatch = { admitted: true; priority: number } | { admitted: false; inFlight: number };

/**
 * KEYS[1] the tenant's set; ARGV member, now, stale before, cap, then the members of the steps the
 * same transition ends. Counts the step as the tenant's unless the tenant is at its cap, in one step
 * so parallel transitions cannot pass the cap together. Returns the tenant's steps in flight before
 * this one, or -1 when at its cap.
 */
const RESERVE = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
for i = 5, #ARGV do redis.call('ZREM', KEYS[1], ARGV[i]) end
local depth = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return depth - 1 end
if depth >= tonumber(ARGV[4]) then return -1 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ${STALE_AFTER_MS})
return depth`;

/**
 * Where the tenant's next step goes: its priority (the step is counted as the tenant's from now),
 * or not yet: the tenant is at its
 * cap of steps in flight. A replay of a step already counted is always admitted. `ended` are the
 * steps whose outcomes the same transition folds (a portrait's prompt, when it queues generate):
 * finished, they no longer count, or a tenant's every next step would queue a turn late.
 */
export async function planStepDispatch(
  redis: Redis,
  config: Config,
  tenant: string,
  queue: GpuQueue,
  stepJobId: string,
  ended: { queue: GpuQueue; stepJobId: string }[] = [],
  now = Date.now(),
): Promise<StepDispatch> {
  const { weight, inFlight } = tenantLimits(config, tenant);
  const key = tenantGpuWorkKey(config.QUEUE_PREFIX, tenant);
  const done = ended.map((e) => member(e.queue, e.stepJobId));
  const depth = Number(await redis.eval(RESERVE, 1, key, member(queue, stepJobId), now, now - STALE_AFTER_MS, inFlight, ...done));
  if (depth < 0) return { admitted: false, inFlight };
  return { admitted: true, priority: stepPriority(depth, weight) };
}

/** The priority of a tenant's step queued with `depth` of its steps already in flight (1 is served first). */
export function stepPriority(depth: number, weight: number): number {
  return Math.min(PRIORITY_LIMIT, 1 + Math.floor(Math.max(0, depth) / weight));
}

/** Stops counting a step, on the transition that folds its outcome (or leaves it unfinished). */
export function countStepEnded(tx: WorkflowTransaction, config: Config, tenant: string, queue: GpuQueue, stepJobId: string): void {
  tx.zrem(tenantGpuWorkKey(config.QUEUE_PREFIX, tenant), member(queue, stepJobId));
}
