import { logger } from '../../logger';
import type { BatchItem } from '../../store/batchModel';
import { TERMINAL_STATUSES } from '../../store/statuses';
import { requestCancel } from '../cancellation';
import type { BatchTarget } from '../contracts/batch';
import { WorkflowMetrics } from '../workflowMetrics';
import { batchSource, findBatchChildren, type BatchSource } from './batchChildren';
import { appendErasures } from './erasureLog';
import { erasePass, type PassEntry } from './erasurePass';
import { nowOf, streamsSince, type ErasureDeps, type ErasureTarget, type ErasureTrigger, type ResourceKind } from './erasureTarget';
import { addPendingErasure } from './pendingErasureSet';
import { MODELS } from './resourceModels';


/** A resource being erased; a batch carries what it makes children from, read once (its document goes in the first pass). */
type Open = PassEntry & { batch?: BatchSource };

/**
 * The one erasure path (DELETE routes, retention, tenant erasure, the erasure log's replay): the
 * resources (a batch with its children) are logged (before anything is deleted, so a crash midway
 * is finished by the replay), a running one is cancelled through the ordinary cancel path, then
 * passes (erasurePass.ts) run until nothing of them runs any more, for at most ERASURE_SETTLE_MS;
 * what is still running then is left to the orchestrators (pendingErasures.ts). Their documents go
 * in the first pass, so the API answers 404 at once. A batch's children are looked for again on
 * every pass (batchChildren.ts): a batch that is fanning out is still making them.
 */
export async function eraseResources(deps: ErasureDeps, targets: ErasureTarget[], trigger: ErasureTrigger): Promise<{ erased: Record<ResourceKind, number>; pending: number }> {
  const erased = { job: 0, generation: 0, batch: 0, identity: 0 };
  const seen = new Set<string>();
  let open = await adopt(deps, targets, seen, trigger);
  if (open.length === 0) return { erased, pending: 0 };
  const count = (entries: Open[]) => entries.forEach(({ target }) => erased[target.kind]++);
  count(open);
  const deadline = Date.now() + deps.config.ERASURE_SETTLE_MS;
  for (;;) {
    const round = await eraseRound(deps, open, seen);
    count(round.found);
    open = round.open;
    if (open.length === 0 || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const { target, since } of open) await addPendingErasure(deps, target, since);
  const metrics = new WorkflowMetrics(deps.config.QUEUE_PREFIX);
  for (const kind of ['job', 'generation', 'batch', 'identity'] as const) await metrics.erased(deps.redis, kind, trigger, erased[kind]);
  logger.info('erased', { trigger, resources: [...seen].join(','), stillRunning: open.length });
  return { erased, pending: open.length };
}

/**
 * One round: the batches' children not met yet, then one pass over everything; a batch whose job
 * is gone (nothing can fan out any more) is looked at once more for a child added meanwhile.
 * `open`: what still runs, and children met after the pass; `found`: every child met this round.
 */
export async function eraseRound(deps: ErasureDeps, open: Open[], seen: Set<string>): Promise<{ open: Open[]; found: Open[] }> {
  const early = await childrenOf(deps, open, seen);
  const { running } = await erasePass(deps, [...open, ...early]);
  const late = await childrenOf(deps, open.filter((e) => e.batch && !running.includes(e)), seen);
  return { open: [...running, ...late], found: [...early, ...late] };
}

async function childrenOf(deps: ErasureDeps, open: Open[], seen: Set<string>): Promise<Open[]> {
  const found: Open[] = [];
  for (const { target, since, batch } of open) {
    if (!batch) continue;
    const children = await findBatchChildren(deps, batch);
    found.push(...(await adopt(deps, children.map((c) => ({ ...c, tenant: target.tenant })), seen, 'late', since)));
  }
  return found;
}

/**
 * Targets not seen yet, with what their documents say, each batch followed by its children: logged
 * (not in a replay: its resources are in the log already; of children met late, those with a
 * document), and cancelled when unfinished. A missing document is still erased (its traces may
 * remain); `childrenSince`: where the streams of children without one begin (their batch's).
 */
async function adopt(deps: ErasureDeps, targets: ErasureTarget[], seen: Set<string>, trigger: ErasureTrigger | 'late', childrenSince = 0): Promise<Open[]> {
  const adopted: (Open & { exists: boolean; status?: string })[] = [];
  const add = async (target: ErasureTarget, since: number) => {
    if (seen.has(target.id)) return;
    seen.add(target.id);
    const doc = await MODELS[target.kind]
      .findById(target.id, { status: 1, createdAt: 1, items: 1, target: 1 })
      .lean<{ status: string; createdAt?: Date; items?: BatchItem[]; target?: BatchTarget }>();
    const entry = { target, since: doc?.createdAt ? streamsSince(doc.createdAt) : since, exists: doc !== null, status: doc?.status };
    if (target.kind !== 'batch') return void adopted.push(entry);
    const batch = await batchSource(deps, target.id, target.tenant, doc && { target: doc.target, items: doc.items ?? [] });
    adopted.push({ ...entry, batch });
    for (const child of await findBatchChildren(deps, batch)) await add({ ...child, tenant: target.tenant }, entry.since);
  };
  for (const target of targets) await add(target, childrenSince);
  const logged = trigger === 'replay' ? [] : adopted.filter((e) => e.exists || trigger !== 'late');
  await appendErasures(deps.config.ERASURE_LOG, logged.map(({ target }) => target), nowOf(deps));
  // A batch ends when its children have; TERMINAL_STATUSES holds its own terminal ones too.
  for (const { target, exists, status } of adopted) if (!exists || !TERMINAL_STATUSES.has(status!)) await requestCancel(deps.redis, deps.config.QUEUE_PREFIX, target.id);
  return adopted.map(({ target, since, batch }) => ({ target, since, ...(batch ? { batch } : {}) }));
}
