import type { AttemptRecord, StepRecord } from '../flows/contracts/portraitState';
import type { JobDocument } from '../store/jobModel';
import { pixelsView } from './pixelsView';

const iso = (ms?: number | Date | null) => (ms ? new Date(ms).toISOString() : null);

function stepView(step?: StepRecord) {
  if (!step) return undefined;
  return {
    status: step.status,
    step_job_id: step.stepJobId,
    queued_at: iso(step.queuedAt),
    started_at: iso(step.startedAt),
    finished_at: iso(step.finishedAt),
    duration_ms: step.startedAt && step.finishedAt ? step.finishedAt - step.startedAt : null,
    tries: step.tries ?? null,
    ...(step.error ? { error: step.error } : {}),
  };
}

function attemptView(jobId: string, a: AttemptRecord) {
  return {
    number: a.number,
    status: a.status,
    seed: a.seed,
    prompt: a.prompt ?? null,
    images: a.images.map((i) => ({ key: i.key, width: i.width, height: i.height, content_type: i.contentType })),
    image_url: a.images.length > 0 ? `/jobs/${jobId}/attempts/${a.number}/image` : null,
    pixels: pixelsView(a.pixels),
    verdict: a.verdict ?? null,
    steps: { prompt: stepView(a.steps.prompt), generate: stepView(a.steps.generate), validate: stepView(a.steps.validate) },
  };
}

/** The public shape of a job (GET /jobs/:id): snake_case, timestamps as ISO strings. */
export function jobView(doc: JobDocument) {
  const report = doc.report as { step: StepRecord; result?: unknown } | null | undefined;
  const result = doc.result as { attempt: number; imageKey: string; score: number } | null | undefined;
  const jobId = doc._id.toHexString();
  return {
    job_id: jobId,
    status: doc.status,
    parameters: doc.parameters,
    candidates: doc.candidates ?? 1,
    loras: doc.loras ?? [],
    reference_image: { key: doc.reference!.key, width: doc.reference!.width, height: doc.reference!.height },
    attempts: (doc.attempts as AttemptRecord[]).map((a) => attemptView(jobId, a)),
    result: result ? { attempt: result.attempt, image_key: result.imageKey, score: result.score, ...(doc.status === 'completed' ? { url: `/jobs/${jobId}/result` } : {}) } : null,
    report: report ? { step: stepView(report.step), available: Boolean(report.result) } : null,
    error: doc.error ?? null,
    webhook: doc.webhook ?? null,
    cycle: doc.cycle ?? 1,
    history: doc.history ?? [],
    created_at: iso(doc.createdAt),
    updated_at: iso(doc.updatedAt),
    started_at: iso((doc.attempts as AttemptRecord[])[0]?.steps.prompt?.queuedAt),
    finished_at: iso(doc.finishedAt),
  };
}
