import { logger } from '../../logger';
import { ApiKeyModel } from '../../store/apiKeyModel';
import { ScheduleModel } from '../../store/scheduleModel';
import { readErasureLog, type ErasureLogEntry } from './erasureLog';
import { inboxRoot } from '../batches/inboxPhotos';
import { eraseResources } from './resourceErasure';
import { MODELS } from './resourceModels';
import { eraseTenant, inboxObjectsUpTo } from './tenantErasure';
import type { ErasureDeps, ResourceKind } from './erasureTarget';

/** Ids per `$in` query. */
const CHUNK = 500;

export type ErasureReplay = { logged: number; erasedAgain: number; tenantsErasedAgain: number };

/**
 * Applies the erasure log (ERASURE_LOG) to the data as it is now: whatever it names that exists
 * again (a restore of a backup older than the erasure) is erased again through the same path.
 * Run when an orchestrator starts. Cheap when nothing came back: one `$in` query per kind and
 * few ids, one query per collection and one listing of the inbox folder for the tenants.
 */
export async function replayErasureLog(deps: ErasureDeps): Promise<ErasureReplay> {
  const entries = await readErasureLog(deps.config.ERASURE_LOG);
  const replay: ErasureReplay = { logged: entries.length, erasedAgain: 0, tenantsErasedAgain: 0 };
  for (const kind of ['batch', 'job', 'generation'] as const) {
    const tenantOf = new Map(entries.filter((e) => e.kind === kind).map((e) => [e.id, e.tenant]));
    const ids = [...tenantOf.keys()];
    for (let i = 0; i < ids.length; i += CHUNK) {
      const back = await MODELS[kind].find({ _id: { $in: ids.slice(i, i + CHUNK) } }, { _id: 1 }).lean<{ _id: unknown }[]>();
      if (back.length === 0) continue;
      const { erased } = await eraseResources(deps, back.map((d) => ({ kind: kind as ResourceKind, id: String(d._id), tenant: tenantOf.get(String(d._id))! })), 'replay');
      replay.erasedAgain += erased.job + erased.generation + erased.batch;
    }
  }
  for (const [tenant, at] of lastErasureOfEachTenant(entries)) {
    const createdUpTo = { tenant, createdAt: { $lte: at } };
    const models = [ApiKeyModel, ScheduleModel, ...Object.values(MODELS)];
    const found = await Promise.all(models.map((m) => m.exists(createdUpTo)));
    const inboxBack = await inboxObjectsUpTo(deps, inboxRoot(deps.config, tenant, ''), at);
    if (!found.some(Boolean) && inboxBack.length === 0) continue;
    await eraseTenant(deps, tenant, 'replay', at);
    replay.tenantsErasedAgain++;
  }
  if (replay.erasedAgain + replay.tenantsErasedAgain > 0) logger.warn('erasure log replayed: erased data had come back (a restore?)', replay);
  return replay;
}

function lastErasureOfEachTenant(entries: ErasureLogEntry[]): Map<string, Date> {
  const last = new Map<string, Date>();
  for (const e of entries) {
    if (e.kind !== 'tenant') continue;
    const at = new Date(e.at);
    const before = last.get(e.id);
    if (!before || at > before) last.set(e.id, at);
  }
  return last;
}
