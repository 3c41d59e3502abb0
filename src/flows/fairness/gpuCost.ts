import type { BatchTarget } from '../contracts/batch';
import type { GenerationRequest } from '../contracts/generation';
import { RESOLUTIONS, type PortraitParameters } from '../contracts/portraitParameters';

/**
 * What a request costs in GPU units, before anything runs, so a tenant's budget (gpuBudget.ts) and
 * the per-request cap can refuse it up front. One GPU unit is one denoising step over one megapixel
 * (1024 × 1024 pixels), what a diffusion step's time grows with:
 *
 *   units = megapixels rendered × steps × images × candidates × upscale factor × attempts
 *
 * - a generation: width × height / 2^20 × (steps, else the worker's default 28) × num_images × upscale;
 * - a portrait: its resolution's megapixels × 28 × candidates × the attempts it may take (MAX_ATTEMPTS:
 *   the worst case, since a failed validation renders again);
 * - a batch: the sum of its generations, or max_photos portraits (the photos are found when it runs);
 * - a schedule: its batch's cost × its firings in one budget window (schedules.ts counts them);
 * - an identity: its training resolution's megapixels × steps × 3 (a training step is a forward and
 *   a backward pass, about three denoising steps' work) plus its evaluation's renders (3 held-out
 *   portraits, with and without the LoRA, DEFAULT_STEPS each).
 * The prompt, validate and report steps are small beside the render and are not counted. Rounded up
 * to whole units.
 */

/** The worker's denoising steps when a request names none (gpu-worker settings `default_steps`). */
export const DEFAULT_STEPS = 28;
const MEGAPIXEL = 1024 * 1024;

type GenerationCostInput = Pick<GenerationRequest, 'width' | 'height' | 'num_images'> & { steps?: number; upscale?: number };

const megapixels = (width: number, height: number) => (width * height) / MEGAPIXEL;

export function generationCost(request: GenerationCostInput): number {
  return Math.ceil(megapixels(request.width, request.height) * (request.steps ?? DEFAULT_STEPS) * request.num_images * (request.upscale ?? 1));
}

export function portraitCost(request: { parameters: Pick<PortraitParameters, 'resolution'>; candidates: number }, maxAttempts: number): number {
  const { width, height } = RESOLUTIONS[request.parameters.resolution];
  return Math.ceil(megapixels(width, height) * DEFAULT_STEPS * request.candidates * maxAttempts);
}

/** Held-out portraits an identity's evaluation renders twice each (gpu-worker identity/evaluation.py's default). */
const EVALUATION_PORTRAITS = 3;

export function identityCost(training: { steps: number; resolution: number }): number {
  const perStep = megapixels(training.resolution, training.resolution);
  return Math.ceil(perStep * training.steps * 3 + perStep * DEFAULT_STEPS * 2 * EVALUATION_PORTRAITS);
}

export function batchCost(target: BatchTarget, maxAttempts: number): number {
  if (target.type === 'generations') return target.requests.reduce((sum, request) => sum + generationCost(request), 0);
  return target.max_photos * portraitCost({ parameters: target.parameters, candidates: 1 }, maxAttempts);
}
