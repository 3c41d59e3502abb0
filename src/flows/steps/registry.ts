import type { z } from 'zod';
import { CaptionIdentityStepInput, CaptionIdentityStepResult } from '../contracts/captionIdentityStep';
import { CheckIdentityPhotosStepInput, CheckIdentityPhotosStepResult } from '../contracts/checkIdentityPhotosStep';
import { EvaluateIdentityStepInput, EvaluateIdentityStepResult } from '../contracts/evaluateIdentityStep';
import { GenerateStepInput, GenerateStepResult } from '../contracts/generateStep';
import { PrepareIdentityStepInput, PrepareIdentityStepResult } from '../contracts/prepareIdentityStep';
import { PromptStepInput, PromptStepResult } from '../contracts/promptStep';
import { ReportStepInput, ReportStepResult } from '../contracts/reportStep';
import { TrainIdentityStepInput, TrainIdentityStepResult } from '../contracts/trainIdentityStep';
import { ValidateStepInput, ValidateStepResult } from '../contracts/validateStep';

/**
 * The GPU steps and where they run, in one place for TypeScript. `npm run contracts` exports it as
 * contracts/steps.json (and each contract as JSON Schema), from which the Python worker learns its
 * queues, roles and contracts, so a new step is added here and in the worker's processor table.
 */

/**
 * The Python worker's pools (`--role`): which models a process loads. `training` learns identities
 * (its own copy of the training model, long jobs), so a deployment keeps it off the GPUs that render.
 */
export type GpuPool = 'diffusion' | 'vlm' | 'training';
/** The workflows that queue GPU steps. */
export type Workflow = 'portrait' | 'generation' | 'identity';

export type StepDefinition = {
  /** The contract both languages validate: the payload queued and the result returned. */
  input: z.ZodType;
  result: z.ZodType;
  pool: GpuPool;
  /**
   * Every step has a queue named after it; a workflow whose use of the step needs a pool of its own
   * (other models, its own backlog to scale on) names another one here.
   */
  workflowQueues?: Partial<Record<Workflow, string>>;
};

export const STEPS = {
  prompt: { input: PromptStepInput, result: PromptStepResult, pool: 'vlm' },
  // A portrait's generate renders with the image-editing model, apart from text-to-image generations.
  generate: { input: GenerateStepInput, result: GenerateStepResult, pool: 'diffusion', workflowQueues: { portrait: 'portrait-generate' } },
  validate: { input: ValidateStepInput, result: ValidateStepResult, pool: 'vlm' },
  report: { input: ReportStepInput, result: ReportStepResult, pool: 'vlm' },
  // An identity's photo captions, by the VLM that judges portraits (issue 21).
  caption_identity: { input: CaptionIdentityStepInput, result: CaptionIdentityStepResult, pool: 'vlm' },
  // Each photo sent for an identity has one adequate face: POST /identities waits for it (issue 21).
  check_identity_photos: { input: CheckIdentityPhotosStepInput, result: CheckIdentityPhotosStepResult, pool: 'vlm' },
  // Identities (issue 21): an identity's photos framed, captioned and embedded, a LoRA learnt from
  // them, then held-out portraits rendered with and without it and compared with the photos.
  prepare_identity: { input: PrepareIdentityStepInput, result: PrepareIdentityStepResult, pool: 'training' },
  train_identity: { input: TrainIdentityStepInput, result: TrainIdentityStepResult, pool: 'training' },
  evaluate_identity: { input: EvaluateIdentityStepInput, result: EvaluateIdentityStepResult, pool: 'training' },
} as const satisfies Record<string, StepDefinition>;

export type StepName = keyof typeof STEPS;
export const STEP_NAMES = Object.keys(STEPS) as StepName[];
export type StepInput<S extends StepName> = z.infer<(typeof STEPS)[S]['input']>;
export type StepResult<S extends StepName> = z.infer<(typeof STEPS)[S]['result']>;

type WorkflowQueue<S extends StepName, W extends Workflow = Workflow> = S extends StepName
  ? (typeof STEPS)[S] extends { workflowQueues: infer Q }
    ? Q[W & keyof Q]
    : never
  : never;
/** Where workflow W queues step S: the workflow's own queue for it, else the step's. */
export type StepQueue<S extends StepName, W extends Workflow> = S extends StepName ? ([WorkflowQueue<S, W>] extends [never] ? S : WorkflowQueue<S, W>) : never;
/** Every queue the Python GPU worker consumes. */
export type GpuQueue = { [S in StepName]: S | WorkflowQueue<S> }[StepName];
/** The step (and so the contract) a GPU queue's jobs carry. */
export type StepOfQueue<Q extends GpuQueue> = { [S in StepName]: Q extends S | WorkflowQueue<S> ? S : never }[StepName];

/** A step's definition, read without the literal types of one entry. */
export const stepDefinition = (step: StepName): StepDefinition => STEPS[step];

/** Where a workflow queues a step: a portrait's generate goes to the editing-model pool. */
export const stepQueue = <S extends StepName, W extends Workflow>(step: S, workflow: W): StepQueue<S, W> =>
  (stepDefinition(step).workflowQueues?.[workflow] ?? step) as StepQueue<S, W>;

/** Every GPU queue with the step it carries: each step's own queue, then the workflows' queues. */
export const GPU_QUEUES = Object.fromEntries(
  STEP_NAMES.flatMap((step) => [step, ...Object.values(stepDefinition(step).workflowQueues ?? {})].map((queue) => [queue, step])),
) as { readonly [Q in GpuQueue]: StepOfQueue<Q> };

