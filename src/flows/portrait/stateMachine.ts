import { createHash } from 'node:crypto';
import type { AttemptRecord, JobError, PortraitState, StepRecord } from './contracts/portraitState';
import { RESOLUTIONS } from './contracts/portraitParameters';
import { STEPS, stepJobId, type StepName, type StepResult } from './steps';

/**
 * The portrait workflow as pure functions over PortraitState: what runs next, what it is given, and
 * how its outcome changes the state. The BullMQ glue lives in portraitOrchestrator.ts.
 *
 *   attempt k: prompt -> generate -> validate -> passed: completed
 *                                              -> rejected, k < max: attempt k+1 (with feedback)
 *                                              -> rejected, k = max: report -> failed_validation
 *   any step failing permanently or timing out: failed
 *   a cancel request, at any point: cancelled
 */

export type JobStatus = 'pending' | 'running' | 'completed' | 'failed_validation' | 'failed' | 'cancelled';
export const JOB_STATUSES: readonly JobStatus[] = ['pending', 'running', 'completed', 'failed_validation', 'failed', 'cancelled'];

export type NextStep =
  | { kind: 'step'; step: StepName; attempt?: number }
  | { kind: 'done'; status: 'completed' | 'failed_validation' | 'failed' | 'cancelled' };

export type StepOutcome =
  | { status: 'completed'; value: unknown; startedAt?: number; finishedAt?: number; tries?: number }
  | { status: 'failed'; reason: string; startedAt?: number; finishedAt?: number; tries?: number }
  | { status: 'timed_out' };

export function planNextStep(state: PortraitState): NextStep {
  if (state.cancelled) return { kind: 'done', status: 'cancelled' };
  if (state.error) return { kind: 'done', status: 'failed' };
  if (state.report) {
    return state.report.result ? { kind: 'done', status: 'failed_validation' } : { kind: 'step', step: 'report' };
  }
  const last = state.attempts.at(-1);
  if (!last) return { kind: 'step', step: 'prompt', attempt: 1 };
  switch (last.status) {
    case 'passed':
      return { kind: 'done', status: 'completed' };
    case 'running':
      if (last.prompt === undefined) return { kind: 'step', step: 'prompt', attempt: last.number };
      if (last.images.length === 0) return { kind: 'step', step: 'generate', attempt: last.number };
      return { kind: 'step', step: 'validate', attempt: last.number };
    default:
      return last.number < state.maxAttempts
        ? { kind: 'step', step: 'prompt', attempt: last.number + 1 }
        : { kind: 'step', step: 'report' };
  }
}

type StepNext = Extract<NextStep, { kind: 'step' }>;

export function stepRecordOf(state: PortraitState, next: StepNext): StepRecord | undefined {
  if (next.step === 'report') return state.report?.step;
  const attempt = state.attempts.find((a) => a.number === next.attempt);
  return attempt?.steps[next.step as keyof AttemptRecord['steps']];
}

/** Derived from the job id so a replayed attempt uses the same seed. */
export function seedFor(jobId: string, attempt: number): number {
  return createHash('sha256').update(`${jobId}:${attempt}`).digest().readUInt32BE(0);
}

/** Records that the step was queued (opening a new attempt when it is the attempt's first step). */
export function markStepQueued(state: PortraitState, next: StepNext, now: number): PortraitState {
  // A retry cycle has its own report step, so its id must differ from the earlier cycle's.
  const id = stepJobId(state.jobId, next.step, next.attempt) + (next.step === 'report' && state.cycle > 1 ? `-c${state.cycle}` : '');
  const record: StepRecord = { stepJobId: id, status: 'queued', queuedAt: now };
  if (next.step === 'report') return { ...state, report: { step: record } };
  const attempts = [...state.attempts];
  if (!attempts.some((a) => a.number === next.attempt)) {
    attempts.push({ number: next.attempt!, status: 'running', seed: seedFor(state.jobId, next.attempt!), images: [], steps: {} });
  }
  return {
    ...state,
    attempts: attempts.map((a) => (a.number === next.attempt ? { ...a, steps: { ...a.steps, [next.step]: record } } : a)),
  };
}

/** The complete payload of a step job: a step reads nothing but this and the S3 objects it names. */
export function buildStepInput(state: PortraitState, next: StepNext): unknown {
  const { jobId, parameters, referenceImageKey } = state;
  if (next.step === 'report') {
    return {
      jobId,
      parameters,
      referenceImageKey,
      attempts: state.attempts.map((a) => ({
        attempt: a.number,
        prompt: a.prompt ?? '',
        imageKeys: a.images.map((i) => i.key),
        verdict: a.verdict!,
      })),
    };
  }
  const attempt = state.attempts.find((a) => a.number === next.attempt)!;
  switch (next.step) {
    case 'prompt': {
      const previous = state.attempts.find((a) => a.number === attempt.number - 1);
      return {
        jobId,
        attempt: attempt.number,
        parameters,
        referenceImageKey,
        previous: previous ? { prompt: previous.prompt ?? '', feedback: previous.verdict?.feedback ?? '' } : null,
      };
    }
    case 'generate':
      return {
        jobId,
        attempt: attempt.number,
        prompt: attempt.prompt!,
        ...(attempt.negativePrompt ? { negativePrompt: attempt.negativePrompt } : {}),
        seed: attempt.seed,
        ...RESOLUTIONS[parameters.resolution],
        numImages: 1,
        referenceImageKey,
        loras: [],
        outputPrefix: `jobs/${jobId}/attempts/${attempt.number}`,
      };
    case 'validate': {
      const size = RESOLUTIONS[parameters.resolution];
      return {
        jobId,
        attempt: attempt.number,
        parameters,
        referenceImageKey,
        imageKey: attempt.images[0].key,
        prompt: attempt.prompt!,
        expectedWidth: size.width,
        expectedHeight: size.height,
      };
    }
  }
}

/** Folds a finished (or abandoned) step job into the state. */
export function applyStepOutcome(state: PortraitState, next: StepNext, outcome: StepOutcome): PortraitState {
  const record = stepRecordOf(state, next)!;
  const where = { step: next.step, ...(next.attempt ? { attempt: next.attempt } : {}) };
  const fail = (error: JobError, status: StepRecord['status']) =>
    withStep(state, next, { ...record, ...timing(outcome), status, error: error.message }, { error }, 'errored');

  if (outcome.status === 'timed_out') {
    return fail({ code: 'step_timed_out', message: `${next.step} step did not finish in time`, ...where }, 'timed_out');
  }
  if (outcome.status === 'failed') {
    return fail({ code: 'step_failed', message: `${next.step} step failed: ${outcome.reason}`, ...where }, 'failed');
  }
  const parsed = STEPS[next.step].result.safeParse(outcome.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const message = `${next.step} step returned an invalid result: ${issue.path.join('.') || '(root)'}: ${issue.message}`;
    return fail({ code: 'invalid_step_result', message, ...where }, 'failed');
  }
  const done: StepRecord = { ...record, ...timing(outcome), status: 'completed' };
  if (next.step === 'report') {
    return { ...state, report: { step: done, result: parsed.data as StepResult<'report'> } };
  }
  return withStep(state, next, done, {}, undefined, resultFields(next.step, parsed.data));
}

function resultFields(step: StepName, value: unknown): Partial<AttemptRecord> {
  switch (step) {
    case 'prompt': {
      const { prompt, negativePrompt } = value as StepResult<'prompt'>;
      return negativePrompt ? { prompt, negativePrompt } : { prompt };
    }
    case 'generate':
      return { images: (value as StepResult<'generate'>).images };
    case 'validate': {
      const verdict = value as StepResult<'validate'>;
      return { verdict, status: verdict.passed ? 'passed' : 'rejected' };
    }
    default:
      return {};
  }
}

function withStep(
  state: PortraitState,
  next: StepNext,
  record: StepRecord,
  stateFields: Partial<PortraitState>,
  attemptStatus?: AttemptRecord['status'],
  attemptFields: Partial<AttemptRecord> = {},
): PortraitState {
  if (next.step === 'report') return { ...state, ...stateFields, report: { step: record } };
  return {
    ...state,
    ...stateFields,
    attempts: state.attempts.map((a) =>
      a.number === next.attempt
        ? { ...a, ...attemptFields, ...(attemptStatus ? { status: attemptStatus } : {}), steps: { ...a.steps, [next.step]: record } }
        : a,
    ),
  };
}

function timing(outcome: StepOutcome): Partial<StepRecord> {
  if (outcome.status === 'timed_out') return { finishedAt: Date.now() };
  const { startedAt, finishedAt, tries } = outcome;
  return { startedAt, finishedAt, tries };
}

/**
 * POST /jobs/:id/retry: a failed job gets a new cycle of up to `attempts` attempts, numbered after
 * the old ones; the old attempts stay, and how the cycle ended moves to `history`.
 */
export function startRetryCycle(state: PortraitState, status: JobStatus, attempts: number): PortraitState {
  const { error, report, cancelled: _cancelled, ...rest } = state;
  return {
    ...rest,
    history: [...state.history, { cycle: state.cycle, status, ...(error ? { error } : {}), ...(report?.result ? { report: report.result } : {}) }],
    cycle: state.cycle + 1,
    maxAttempts: state.attempts.length + attempts,
  };
}

/** The attempt whose image is the job's result: the passing one, else the best-scored one. */
export function bestAttempt(state: PortraitState): AttemptRecord | undefined {
  const judged = state.attempts.filter((a) => a.verdict && a.images.length > 0);
  return judged.find((a) => a.status === 'passed') ?? [...judged].sort((a, b) => b.verdict!.score - a.verdict!.score)[0];
}
