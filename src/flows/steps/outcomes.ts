import { readStepFailure, type JobErrorCode } from '../contracts/stepErrors';
import { STEPS, type StepName, type StepResult } from './registry';

/** How a step child ended: its value or failure with timings, or `timed_out` when the watchdog released it. */
export type StepOutcome =
  | { status: 'completed'; value: unknown; startedAt?: number; finishedAt?: number; tries?: number }
  | { status: 'failed'; reason: string; startedAt?: number; finishedAt?: number; tries?: number }
  | { status: 'timed_out' };

/** A step's failure as the caller reads it: a stable code, a message written for them, whether a retry may help (coded failures). */
export type StepError = { code: Exclude<JobErrorCode, 'internal'>; message: string; retryable?: boolean };

/**
 * A step's outcome as every workflow reads it: the result checked against the step's contract, or
 * the error the workflow records (with the step record's status), worded the same everywhere
 * (contracts/stepErrors.ts).
 */
export function checkOutcome<S extends StepName>(
  step: S,
  outcome: StepOutcome,
): { ok: true; result: StepResult<S> } | { ok: false; error: StepError; recordStatus: 'failed' | 'timed_out' } {
  if (outcome.status === 'timed_out') {
    return { ok: false, recordStatus: 'timed_out', error: { code: 'step_timed_out', message: `${step} step did not finish in time` } };
  }
  if (outcome.status === 'failed') {
    // A coded failure gets the caller's message from the list (the worker's wording is logged when
    // the outcome is folded); one without a code keeps the generic code and the worker's wording.
    const { code, message, retryable, detail } = readStepFailure(outcome.reason);
    const error = code ? { code, message: message!, retryable } : { code: 'step_failed' as const, message: `${step} step failed: ${detail}` };
    return { ok: false, recordStatus: 'failed', error };
  }
  const parsed = STEPS[step].result.safeParse(outcome.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const message = `${step} step returned an invalid result: ${issue.path.join('.') || '(root)'}: ${issue.message}`;
    return { ok: false, recordStatus: 'failed', error: { code: 'invalid_step_result', message } };
  }
  return { ok: true, result: parsed.data as StepResult<S> };
}
