import { GenerationModel } from '../../store/generationModel';
import { JobModel } from '../../store/jobModel';
import type { BatchItem } from '../../store/batchModel';

export type ChildStatus = { id: string; kind: BatchItem['kind']; status: string; error?: { code?: string; message?: string } | null };

/** The batch's children as they are now (their documents are the source of truth). */
export async function childStatuses(items: BatchItem[]): Promise<ChildStatus[]> {
  const ids = (kind: BatchItem['kind']) => items.filter((i) => i.kind === kind).map((i) => i.id);
  const project = { status: 1, error: 1 };
  const [jobs, generations] = await Promise.all([
    ids('portrait').length ? JobModel.find({ _id: { $in: ids('portrait') } }, project).lean() : [],
    ids('generation').length ? GenerationModel.find({ _id: { $in: ids('generation') } }, project).lean() : [],
  ]);
  const byId = new Map([...jobs, ...generations].map((d) => [String(d._id), d as { status: string; error?: ChildStatus['error'] }]));
  return items.map((i) => ({ id: i.id, kind: i.kind, status: byId.get(i.id)?.status ?? 'pending', error: byId.get(i.id)?.error ?? null }));
}

export function countByStatus(children: ChildStatus[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const c of children) counts[c.status] = (counts[c.status] ?? 0) + 1;
  return counts;
}

/** What a finished batch says about itself: counts, pass rate, and which children did not succeed. */
export function summarize(children: ChildStatus[], skipped: number, startedAt: Date) {
  const counts = countByStatus(children);
  const completed = counts.completed ?? 0;
  return {
    total: children.length,
    counts,
    skipped,
    success_rate: children.length ? completed / children.length : null,
    duration_s: Math.round((Date.now() - startedAt.getTime()) / 100) / 10,
    unsuccessful: children
      .filter((c) => c.status !== 'completed')
      .slice(0, 50)
      .map((c) => ({ id: c.id, kind: c.kind, status: c.status, error: c.error ?? null })),
  };
}
