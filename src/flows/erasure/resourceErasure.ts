import type { Model } from 'mongoose';
import { logger } from '../../logger';
import { BatchModel, type BatchItem } from '../../store/batchModel';
import { GenerationModel } from '../../store/generationModel';
import { JobModel } from '../../store/jobModel';
import { TERMINAL_STATUSES } from '../../store/statuses';
import { requestCancel } from '../cancellation';
import { WorkflowMetrics } from '../workflowMetrics';
import { appendErasures } from './erasureLog';
import { erasePass } from './erasurePass';
import { addPendingErasure } from './pendingErasures';
import { nowOf, type ErasureDeps, type ErasureTarget, type ErasureTrigger, type ResourceKind } from './targets';

export const MODELS: Record<ResourceKind, Model<any>> = { job: JobModel, generation: GenerationModel, batch: BatchModel };

/** A batch ends when its children have: these statuses are its own terminal ones. */
const FINISHED_BATCH = new Set(['completed', 'failed']);

/** Margin before a resource's creation where its entries in the queues' event streams may begin (clock skew between processes). */
const STREAM_MARGIN_MS = 60_000;

/**
 * The one erasure path (DELETE routes, retention, tenant erasure, the erasure log's replay): the
 * resources (a batch with its children) are logged (before anything is deleted, so a crash midway
 * is finished by the replay), a running one is cancelled through the ordinary cancel path, then
 * passes (erasurePass.ts) run until nothing of them runs any more, for at most ERASURE_SETTLE_MS;
 * what is still running then is left to the orchestrators (pendingErasures.ts). Their documents go
 * in the first pass, so the API answers 404 at once.
 */
export async function eraseResources(deps: ErasureDeps, targets: ErasureTarget[], trigger: ErasureTrigger): Promise<{ erased: Record<ResourceKind, number>; pending: number }> {
  const found = await withChildren(targets);
  const erased = { job: 0, generation: 0, batch: 0 };
  for (const { target } of found) erased[target.kind]++;
  if (found.length === 0) return { erased, pending: 0 };
  // A replay's resources are in the log already.
  if (trigger !== 'replay') await appendErasures(deps.config.ERASURE_LOG, found.map(({ target }) => target), nowOf(deps));
  for (const { target, status } of found) {
    const finished = target.kind === 'batch' ? FINISHED_BATCH.has(status ?? 'completed') : TERMINAL_STATUSES.has(status ?? 'completed');
    if (!finished) await requestCancel(deps.redis, deps.config.QUEUE_PREFIX, target.id);
  }
  let open = found;
  const deadline = Date.now() + deps.config.ERASURE_SETTLE_MS;
  for (;;) {
    const running: typeof found = [];
    for (const entry of open) if (!(await erasePass(deps, entry.target, entry.since)).settled) running.push(entry);
    open = running;
    if (open.length === 0 || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const { target, since } of open) await addPendingErasure(deps, target, since);
  const metrics = new WorkflowMetrics(deps.config.QUEUE_PREFIX);
  for (const kind of ['job', 'generation', 'batch'] as const) await metrics.erased(deps.redis, kind, trigger, erased[kind]);
  logger.info('erased', { trigger, resources: found.map(({ target }) => `${target.kind}:${target.id}`).join(','), stillRunning: open.length });
  return { erased, pending: open.length };
}

type Found = { target: ErasureTarget; status?: string; since: number };

/** The targets with what their documents say (status, creation), each batch followed by its children; a missing document is still erased (its traces may remain). */
async function withChildren(targets: ErasureTarget[]): Promise<Found[]> {
  const found: Found[] = [];
  const seen = new Set<string>();
  const add = async (target: ErasureTarget) => {
    if (seen.has(target.id)) return;
    seen.add(target.id);
    const doc = await MODELS[target.kind].findById(target.id, { status: 1, createdAt: 1, items: 1 }).lean<{ status: string; createdAt?: Date; items?: BatchItem[] }>();
    found.push({ target, status: doc?.status, since: doc?.createdAt ? doc.createdAt.getTime() - STREAM_MARGIN_MS : 0 });
    for (const item of doc?.items ?? []) await add({ kind: item.kind === 'portrait' ? 'job' : 'generation', id: item.id, tenant: target.tenant });
  };
  for (const target of targets) await add(target);
  return found;
}
