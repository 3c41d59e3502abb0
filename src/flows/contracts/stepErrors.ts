import { z } from 'zod';

/**
 * Why a GPU step failed, as the caller is told it. The Python worker raises typed errors, each with
 * a code from STEP_ERRORS (`npm run contracts` exports the list as contracts/step-errors.json, which
 * the worker checks its error classes against); the failed step job's reason carries the code, and
 * the orchestrator records the code with the message written here. The worker's own wording stays
 * in the logs: it may name paths, hosts or model internals.
 *
 * `retryable`: whether the same job, retried as it is (POST /jobs/:id/retry), may end differently.
 * `params`: values the worker may name, each the caller's own input (a LoRA's repo, a photo's index)
 * or a reason worded for the caller (why a photo was refused), put into the message where it says `{name}`.
 */
type StepErrorSpec = { message: string; retryable: boolean; params?: readonly string[] };

export const STEP_ERRORS = {
  contract_violation: {
    message: 'A step received or produced data outside the contract between this deployment’s services: a fault of the deployment, not of the request.',
    retryable: false,
  },
  lora_unusable: {
    message: 'LoRA {repo} cannot be used: it does not exist, this deployment cannot read it, or it was not made for this model.',
    retryable: false,
    params: ['repo'],
  },
  identity_lora_unusable: {
    message: 'The identity’s trained LoRA cannot be used: it is missing from storage (the identity was erased or never finished training), damaged, or not made for this portrait model.',
    retryable: false,
  },
  unreadable_image: { message: 'An image of the job could not be decoded: the reference photo is damaged or too large.', retryable: false },
  secrets_unavailable: { message: 'The request’s sealed secrets cannot be opened by this deployment (altered, or sealed with another key): send them again with a new request.', retryable: false },
  destination_refused: { message: 'The destination bucket cannot be written: its endpoint is not allowed here, or its keys were not sent.', retryable: false },
  output_too_large: { message: 'The requested image size is larger than this deployment renders.', retryable: false },
  model_server_refused: { message: 'The vision-language model server refused the request: a fault of the deployment’s configuration.', retryable: false },
  unparseable_answer: { message: 'The vision-language model did not give a usable answer; retrying the job may succeed.', retryable: true },
  photo_refused: {
    message: 'The photo at index {index} (counting from 0) cannot be used to learn the person: {reason}.',
    retryable: false,
    params: ['index', 'reason'],
  },
  step_cancelled: { message: 'The step was cancelled while it ran.', retryable: true },
} as const satisfies Record<string, StepErrorSpec>;

export type StepErrorCode = keyof typeof STEP_ERRORS;
export const STEP_ERROR_CODES = Object.keys(STEP_ERRORS) as StepErrorCode[];

/**
 * The workflow's own codes: a step that failed without a code (the generic one), ran past its
 * deadline, or returned a result outside its contract; and the orchestrator giving up on a job.
 */
export const WORKFLOW_ERROR_CODES = ['step_failed', 'step_timed_out', 'invalid_step_result', 'internal'] as const;

/** Every code a failed job or generation carries in `error.code`. */
export const JobErrorCode = z.enum([...WORKFLOW_ERROR_CODES, ...STEP_ERROR_CODES]);
export type JobErrorCode = z.infer<typeof JobErrorCode>;

/**
 * A coded failure's reason as the worker writes it (gpu-worker contracts/step_errors.py): a first
 * line of JSON naming the code and its params, then the worker's own wording.
 */
const CodedReasonHead = z.object({ code: z.string(), params: z.record(z.string(), z.string().max(200)).default({}) });

/** A failed step's reason read: its code and caller message where it carries a code this side knows, and the worker's own wording. */
export type StepFailure = { code?: StepErrorCode; message?: string; retryable?: boolean; detail: string };

/**
 * Reads a failed step job's reason. A reason without a code, or with one this side does not know (a
 * newer worker), has only its detail: the workflow records it generically.
 */
export function readStepFailure(reason: string): StepFailure {
  const newline = reason.indexOf('\n');
  if (!reason.startsWith('{') || newline < 0) return { detail: reason };
  const head = CodedReasonHead.safeParse(safeJson(reason.slice(0, newline)));
  const detail = reason.slice(newline + 1);
  if (!head.success || !(head.data.code in STEP_ERRORS)) return { detail };
  const code = head.data.code as StepErrorCode;
  const spec: StepErrorSpec = STEP_ERRORS[code];
  const named = (name: string) => (spec.params?.includes(name) ? head.data.params[name] : undefined) ?? 'named in the request';
  return { code, message: spec.message.replace(/\{(\w+)\}/g, (_, name: string) => named(name)), retryable: spec.retryable, detail };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
