import { z } from 'zod';
import { IdentityId, JobId, S3Key } from '../../flows/contracts/common';
import { LoraSpec } from '../../flows/contracts/generateStep';
import { PortraitParameters } from '../../flows/contracts/portraitParameters';
import { AttemptRecord, JobError, PortraitState, StepRecord } from '../../flows/contracts/portraitState';
import { ReportStepResult } from '../../flows/contracts/reportStep';
import { ValidateStepResult } from '../../flows/contracts/validateStep';
import { WebhookSpec } from '../../flows/webhooks/events';
import { JOB_STATUSES } from '../../store/statuses';
import { pixelsView, PixelsView } from './pixels';
import type { StoredJob } from './storedJob';
import { pageOf } from './page';
import { iso, Timestamp } from './timestamp';

/** One step of an attempt (or the report step): where its BullMQ job is and how long it took. */
export const StepView = z.object({
  status: StepRecord.shape.status,
  step_job_id: z.string(),
  queued_at: Timestamp,
  started_at: Timestamp,
  finished_at: Timestamp,
  duration_ms: z.number().nullable(),
  tries: z.number().int().nullable(),
  error: z.string().optional(),
});

export const AttemptView = z.object({
  number: AttemptRecord.shape.number,
  status: AttemptRecord.shape.status,
  seed: z.number().int(),
  prompt: z.string().nullable(),
  images: z.array(z.object({ key: S3Key, width: z.number().int(), height: z.number().int(), content_type: z.string() })),
  image_url: z.string().nullable().describe('the chosen candidate of this attempt, kept for failed_validation jobs too'),
  pixels: PixelsView.nullable(),
  verdict: ValidateStepResult.nullable().describe('the best candidate\'s checks and VLM feedback, every candidate\'s own verdict, and which one is best'),
  steps: z.object({ prompt: StepView.optional(), generate: StepView.optional(), validate: StepView.optional() }),
});

/** A job as callers see it (GET /jobs/:id, each of GET /jobs): snake_case, times as ISO strings. */
export const JobView = z.object({
  job_id: JobId,
  status: z.enum(JOB_STATUSES),
  parameters: PortraitParameters,
  candidates: z.number().int(),
  loras: z.array(LoraSpec),
  reference_image: z.object({ key: S3Key, width: z.number().int(), height: z.number().int() }).describe('the first reference photo'),
  reference_count: z.number().int().min(1).describe('how many reference photos the job renders from and validates against (image_file parts sent)'),
  identity_id: IdentityId.nullable().describe('the learnt identity this is a portrait of (its photos are the references, its LoRA is applied); null for uploaded photos'),
  attempts: z.array(AttemptView),
  result: z.object({ attempt: z.number().int(), image_key: S3Key, score: z.number(), url: z.string().optional() }).nullable(),
  report: z.object({ step: StepView, available: z.boolean() }).nullable(),
  error: JobError.nullable(),
  webhook: WebhookSpec.nullable(),
  cycle: z.number().int(),
  history: PortraitState.shape.history.unwrap(),
  created_at: Timestamp,
  updated_at: Timestamp,
  started_at: Timestamp,
  finished_at: Timestamp,
});

/** What POST /jobs, its replay and POST /jobs/:id/retry and /cancel answer: the job's id and where it stands. */
export const JobAccepted = z.object({ job_id: JobId, status: z.string(), message: z.string() });

export const JobList = pageOf('jobs', JobView);

/** GET /jobs/:id/report: the failure analysis of a failed_validation job, with every attempt it analysed. */
export const JobReportView = z.object({ job_id: JobId, status: z.enum(JOB_STATUSES), report: ReportStepResult, attempts: z.array(AttemptView) });

export type StepView = z.output<typeof StepView>;
export type AttemptView = z.output<typeof AttemptView>;
export type JobView = z.output<typeof JobView>;
export type JobList = z.output<typeof JobList>;
export type JobReportView = z.output<typeof JobReportView>;

function stepView(step: StepRecord): StepView {
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

function attemptView(jobId: string, a: AttemptRecord): AttemptView {
  const step = (record?: StepRecord) => (record ? stepView(record) : undefined);
  return {
    number: a.number,
    status: a.status,
    seed: a.seed,
    prompt: a.prompt ?? null,
    images: a.images.map((i) => ({ key: i.key, width: i.width, height: i.height, content_type: i.contentType })),
    image_url: a.images.length > 0 ? `/jobs/${jobId}/attempts/${a.number}/image` : null,
    pixels: pixelsView(a.pixels),
    verdict: a.verdict ?? null,
    steps: { prompt: step(a.steps.prompt), generate: step(a.steps.generate), validate: step(a.steps.validate) },
  };
}

export function jobView(doc: StoredJob): JobView {
  const jobId = doc._id.toHexString();
  const { report, result } = doc;
  return {
    job_id: jobId,
    status: doc.status,
    parameters: doc.parameters,
    candidates: doc.candidates ?? 1,
    loras: doc.loras ?? [],
    reference_image: { key: doc.reference!.key, width: doc.reference!.width, height: doc.reference!.height },
    reference_count: doc.references?.length || 1, // a job stored before several photos had one
    identity_id: doc.identityId ?? null,
    attempts: doc.attempts.map((a) => attemptView(jobId, a)),
    result: result ? { attempt: result.attempt, image_key: result.imageKey, score: result.score, ...(doc.status === 'completed' ? { url: `/jobs/${jobId}/result` } : {}) } : null,
    report: report ? { step: stepView(report.step), available: Boolean(report.result) } : null,
    error: doc.error ?? null,
    webhook: doc.webhook ?? null,
    cycle: doc.cycle ?? 1,
    history: doc.history ?? [],
    created_at: iso(doc.createdAt),
    updated_at: iso(doc.updatedAt),
    started_at: iso(doc.attempts[0]?.steps.prompt?.queuedAt),
    finished_at: iso(doc.finishedAt),
  };
}

/** GET /jobs/:id/report, once `report.result` exists. */
export function jobReportView(doc: StoredJob, report: ReportStepResult): JobReportView {
  return { job_id: doc._id.toHexString(), status: doc.status, report, attempts: jobView(doc).attempts };
}
