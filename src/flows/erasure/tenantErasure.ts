import { deleteSchedule } from '../batches/schedules';
import { inboxRoot } from '../batches/inboxPhotos';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ApiKeyModel, markKeysIssued } from '../../store/apiKeyModel';
import { ScheduleModel } from '../../store/scheduleModel';
import { QueueName } from '../queues';
import { eventStreamLeasesKey, gpuBudgetKey, scheduleLockKey, tenantGpuWorkKey } from '../redisKeys';
import { appendErasures } from './erasureLog';
import { eraseRedisTraces } from './redisTraces';
import { nowOf, streamsSince, type ErasureDeps, type ErasureTrigger, type ResourceKind } from './erasureTarget';
import { eraseResources } from './resourceErasure';
import { MODELS } from './resourceModels';

/** Resources erased per round: bounded, so a large tenant never holds all its ids in memory at once. */
const ROUND = 100;

export type TenantErasure = { keys: number; schedules: number; erased: Record<ResourceKind, number>; inboxPhotos: number; pending: number };

/**
 * A tenant's whole data: its API keys first (deleted, not revoked: a revoked key still names the
 * tenant and its label, and no request can add data once they are gone; the tenant-less mark that
 * keys were issued stays, so an `AUTH_MODE=auto` API does not open when the last tenant goes), its
 * schedules, every batch (with its children), job, generation and identity through the one erasure path, and
 * its inbox folder. `createdUpTo`: only what existed by then (a replay must not erase a tenant of the
 * same name created after the erasure, nor a photo put in its inbox since).
 */
export async function eraseTenant(deps: ErasureDeps, tenant: string, trigger: ErasureTrigger, createdUpTo?: Date): Promise<TenantErasure> {
  const mine = { tenant, ...(createdUpTo ? { createdAt: { $lte: createdUpTo } } : {}) };
  if (trigger !== 'replay') await appendErasures(deps.config.ERASURE_LOG, [{ kind: 'tenant', id: tenant, tenant }], nowOf(deps));
  if (await ApiKeyModel.exists({})) await markKeysIssued();
  const keys = (await ApiKeyModel.deleteMany(mine)).deletedCount;
  const schedules = await ScheduleModel.find(mine, { _id: 1, createdAt: 1 }).lean<{ _id: unknown; createdAt?: Date }[]>();
  const scheduleDeps = { config: deps.config, redis: deps.redis, scheduleQueue: deps.queues.get(QueueName.schedule) };
  for (const s of schedules) await deleteSchedule(scheduleDeps, String(s._id));
  // Their firings' traces in the schedule queue (the scheduler's delayed jobs and their events), in one sweep.
  const traces = schedules.map((s) => ({ id: String(s._id), since: streamsSince(s.createdAt) }));
  if (traces.length > 0) await eraseRedisTraces({ redis: deps.redis, queues: deps.queues, prefix: deps.config.QUEUE_PREFIX }, traces);
  const result: TenantErasure = { keys, schedules: schedules.length, erased: { batch: 0, job: 0, generation: 0, identity: 0 }, inboxPhotos: 0, pending: 0 };
  for (const kind of ['batch', 'job', 'generation', 'identity'] as const) {
    for (;;) {
      const page = await MODELS[kind].find(mine, { _id: 1 }).limit(ROUND).lean<{ _id: unknown }[]>();
      if (page.length === 0) break;
      const done = await eraseResources(deps, page.map((d) => ({ kind, id: String(d._id), tenant })), trigger === 'replay' ? 'replay' : 'tenant');
      for (const k of Object.keys(done.erased) as ResourceKind[]) result.erased[k] += done.erased[k];
      result.pending += done.pending;
    }
  }
  const inbox = inboxRoot(deps.config, tenant, '');
  if (!createdUpTo) result.inboxPhotos = await deps.objects.deletePrefix(inbox);
  else {
    const restored = await inboxObjectsUpTo(deps, inbox, createdUpTo);
    await deps.objects.deleteKeys(restored);
    result.inboxPhotos = restored.length;
  }
  // Its counts of GPU steps in flight and of GPU units spent in this budget window (earlier windows' have expired) go too.
  const budgetWindow = Math.floor(Date.now() / (deps.config.GPU_BUDGET_WINDOW_S * 1000));
  const prefix = deps.config.QUEUE_PREFIX;
  await deps.redis.del(eventStreamLeasesKey(prefix, tenant), scheduleLockKey(prefix, tenant), tenantGpuWorkKey(prefix, tenant), gpuBudgetKey(prefix, tenant, budgetWindow));
  return result;
}

/** The keys of the objects under `prefix` last written at or before `at`: those a restore of an older backup brought back (a restore keeps their times). */
export async function inboxObjectsUpTo(deps: ErasureDeps, prefix: string, at: Date): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await deps.objects.client.send(new ListObjectsV2Command({ Bucket: deps.objects.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key && o.LastModified && o.LastModified <= at) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}
