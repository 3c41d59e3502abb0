import type { z } from 'zod';
import { GenerateStepInput, GenerateStepResult } from '../contracts/generate';
import { PromptStepInput, PromptStepResult } from '../contracts/prompt';
import { ReportStepInput, ReportStepResult } from '../contracts/report';
import { ValidateStepInput, ValidateStepResult } from '../contracts/validate';

/**
 * The GPU steps: one queue each, named after the step, with the contract both sides validate.
 * The Python worker reads the same contracts from the JSON Schemas exported into contracts/.
 */
export const STEPS = {
  prompt: { input: PromptStepInput, result: PromptStepResult },
  generate: { input: GenerateStepInput, result: GenerateStepResult },
  validate: { input: ValidateStepInput, result: ValidateStepResult },
  report: { input: ReportStepInput, result: ReportStepResult },
} as const;

export type StepName = keyof typeof STEPS;
export const STEP_NAMES = Object.keys(STEPS) as StepName[];
export type StepInput<S extends StepName> = z.infer<(typeof STEPS)[S]['input']>;
export type StepResult<S extends StepName> = z.infer<(typeof STEPS)[S]['result']>;
