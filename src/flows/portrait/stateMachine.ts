import { createHash } from 'node:crypto';
import type { JobStatus } from '../../store/statuses';
import { RESOLUTIONS } from '../contracts/portraitParameters';
import type { AttemptRecord, JobError, PortraitState, StepRecord } from '../contracts/portraitState';
import { jobObjectsPrefix, stepJobId } from '../ids';
import { checkOutcome, type StepOutcome } from '../steps/outcomes';
import { STEPS, type StepInput, type StepName, type StepResult } from '../steps/registry';

/**
 * The portrait workflow as pure functions over PortraitState: what runs next, what it is given, and
 * how its outcome changes the state. The BullMQ glue lives in orchestrator.ts.
 *
 *   attempt k: prompt -> generate -> validate -> passed: completed
 *                                              -> rejected, k < max: attempt k+1 (with feedback)
 *                                              -> rejected, k = max: report -> failed_validation
 *   any step failing permanently or timing out: failed
 *   a cancel request, at any point: cancelled
 */

/** A step of the workflow: per attempt for prompt, generate and validate; once per cycle for report. */
export type StepRef = { step: StepName; attempt?: number };
type FinalStatus = 'completed' | 'failed_validation' | 'failed' | 'cancelled';

export type NextStep = ({ kind: 'step' } & StepRef) | { kind: 'done'; status: FinalStatus };

/**
 * What the glue does next: end with `status`; `queue` a step (the state with it marked queued, its
 * record, and its input already checked against the step's contract); or `await` a step already
 * queued (a replay, or the wake-up once it finished).
 */
export type Plan =
  | { kind: 'done'; status: FinalStatus }
  | ({ kind: 'queue'; state: PortraitState; record: StepRecord; input: StepInput<StepName> } & StepRef)
  | ({ kind: 'await'; record: StepRecord } & StepRef);

export function planTransition(state: PortraitState, now: number): Plan {
  const next = planNextStep(state);
  if (next.kind === 'done') return next;
  const ref = { step: next.step, attempt: next.attempt };
  const record = stepRecordOf(state, ref);
  if (record) return { kind: 'await', ...ref, record };
  const queued = markStepQueued(state, ref, now);
  const input = STEPS[next.step].input.parse(buildStepInput(queued, ref)) as StepInput<StepName>;
  return { kind: 'queue', ...ref, state: queued, record: stepRecordOf(queued, ref)!, input };
}

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

export function stepRecordOf(state: PortraitState, next: StepRef): StepRecord | undefined {
  if (next.step === 'report') return state.report?.step;
  const attempt = state.attempts.find((a) => a.number === next.attempt);
  return attempt?.steps[next.step as keyof AttemptRecord['steps']];
}

/** Derived from the job id so a replayed attempt uses the same seed. */
export function seedFor(jobId: string, attempt: number): number {
  return createHash('sha256').update(`${jobId}:${attempt}`).digest().readUInt32BE(0);
}

/** Records that the step was queued (opening a new attempt when it is the attempt's first step). */
export function markStepQueued(state: PortraitState, next: StepRef, now: number): PortraitState {
  const id = stepJobId(state.jobId, next.step, next.attempt, state.cycle);
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

/** Every reference photo of the job: a state written before several photos names only the first. */
export function referenceKeysOf(state: Pick<PortraitState, 'referenceImageKey' | 'referenceImageKeys'>): string[] {
  return state.referenceImageKeys ?? [state.referenceImageKey];
}

/** The complete payload of a step job: a step reads nothing but this and the S3 objects it names. */
export function buildStepInput(state: PortraitState, next: StepRef): unknown {
  const { jobId, parameters, referenceImageKey } = state;
  // Both fields: a worker older than several photos reads referenceImageKey, the first of them.
  const references = { referenceImageKey, referenceImageKeys: referenceKeysOf(state) };
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
        numImages: state.candidates,
        ...references,
        loras: state.loras,
        ...(state.identity ? { identityLora: { key: state.identity.loraKey, triggerToken: state.identity.triggerToken, scale: 1 } } : {}),
        ...(state.secrets ? { secrets: state.secrets } : {}),
        outputPrefix: `${jobObjectsPrefix(jobId)}attempts/${attempt.number}`,
      };
    case 'validate': {
      const size = RESOLUTIONS[parameters.resolution];
      return {
        jobId,
        attempt: attempt.number,
        parameters,
        ...references,
        // A portrait of an identity is checked against every photo of it, not only the references.
        ...(state.identity ? { identityEmbeddingsKey: state.identity.embeddingsKey } : {}),
        imageKeys: attempt.images.map((i) => i.key),
        prompt: attempt.prompt!,
        expectedWidth: size.width,
        expectedHeight: size.height,
      };
    }
  }
}

/** Folds a finished (or abandoned) step job into the state. */
export function applyStepOutcome(state: PortraitState, next: StepRef, outcome: StepOutcome): PortraitState {
  const record = stepRecordOf(state, next)!;
  const checked = checkOutcome(next.step, outcome);
  if (!checked.ok) {
    const error: JobError = { ...checked.error, step: next.step, ...(next.attempt ? { attempt: next.attempt } : {}) };
    return withStep(state, next, { ...record, ...timing(outcome), status: checked.recordStatus, error: error.message }, { error }, 'errored');
  }
  const done: StepRecord = { ...record, ...timing(outcome), status: 'completed' };
  if (next.step === 'report') {
    return { ...state, report: { step: done, result: checked.result as StepResult<'report'> } };
  }
  return withStep(state, next, done, {}, undefined, resultFields(next.step, checked.result));
}

function resultFields(step: StepName, value: unknown): Partial<AttemptRecord> {
  switch (step) {
    case 'prompt': {
      const { prompt, negativePrompt } = value as StepResult<'prompt'>;
      return negativePrompt ? { prompt, negativePrompt } : { prompt };
    }
    case 'generate': {
      const { images, pixels } = value as StepResult<'generate'>;
      return pixels ? { images, pixels } : { images };
    }
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
  next: StepRef,
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

/** Revisions of one attempt cycle stay below this; the next cycle starts above them all. */
const CYCLE_SPAN = 1_000_000;

/**
 * How far the job has come, as a number that only grows with its transitions: every step record
 * counts 1 once queued and 2 once finished, the final status 1 more, and each retry cycle starts
 * above every revision of the cycles before it. The Job document keeps the revision it was written
 * at, and a write carrying a lower one is ignored.
 */
export function revisionOf(state: PortraitState, finished: boolean): number {
  const steps = [...state.attempts.flatMap((a) => Object.values(a.steps)), state.report?.step];
  const progress = steps.reduce((sum, step) => sum + (step ? (step.status === 'queued' ? 1 : 2) : 0), 0);
  return state.cycle * CYCLE_SPAN + progress + (finished ? 1 : 0);
}

/** The attempt whose image is the job's result: the passing one, else the best-scored one. */
export function bestAttempt(state: PortraitState): AttemptRecord | undefined {
  const judged = state.attempts.filter((a) => a.verdict && a.images.length > 0);
  return judged.find((a) => a.status === 'passed') ?? [...judged].sort((a, b) => b.verdict!.score - a.verdict!.score)[0];
}

/** An attempt's chosen image: the candidate its verdict found best (the only one without best of N). */
export function chosenImage(attempt: AttemptRecord): AttemptRecord['images'][number] {
  return attempt.images[attempt.verdict?.best ?? 0] ?? attempt.images[0];
}
