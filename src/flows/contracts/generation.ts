import { z } from 'zod';
import type { WebhookSpec } from '../webhooks/events';
import type { TraceCarrier } from './common';
import { GenerateStepInput, LoraSpec, MAX_OUTPUT_SIDE, UpscaleFactor } from './generateStep';

const side = z.number().int().min(256).max(2048).multipleOf(16);

/** POST /generations: plain text-to-image (the FluxDevCustomFaces seed's request, minus its keys). */
export const GenerationRequest = z.strictObject({
  prompt: z.string().min(1).max(4000),
  negative_prompt: z.string().max(2000).optional(),
  width: side.default(1024),
  height: side.default(1024),
  upscale: UpscaleFactor.optional().describe(
    'the images come out width x upscale by height x upscale: the model renders width x height (or less, within its native budget) and a super-resolution model does the rest',
  ),
  steps: z.number().int().min(1).max(100).optional(),
  guidance: z.number().min(0).max(30).optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  num_images: z.number().int().min(1).max(4).default(1),
  loras: z.array(LoraSpec).max(8).default([]),
  output_format: z.enum(['png', 'webp']).default('png'),
  /** Images inline as base64 in GET /generations/:id; otherwise S3 keys and presigned URLs only. */
  return_base64: z.boolean().default(false),
  /** Signed notifications when it ends (events: generation.completed|failed|cancelled). */
  webhook: z.strictObject({ url: z.string().max(2048), events: z.array(z.string()).max(8).optional() }).optional(),
  /** Write the images to the caller's own bucket (its keys go in secrets.s3) instead of the deployment's. */
  destination: GenerateStepInput.shape.destination,
  /** Sealed before they enter Redis or MongoDB; never returned or logged. */
  secrets: z
    .strictObject({
      hf_token: z.string().min(1).max(512),
      s3: z.strictObject({ access_key_id: z.string().min(1).max(256), secret_access_key: z.string().min(1).max(256), session_token: z.string().max(4096).optional() }),
    })
    .partial()
    .optional(),
});
export type GenerationRequest = z.infer<typeof GenerationRequest>;

type Size = { width: number; height: number; upscale?: number };

/** The size of a generation's images: the requested one times its upscale factor. */
export function outputSize(request: Size): { width: number; height: number } {
  const factor = request.upscale ?? 1;
  return { width: request.width * factor, height: request.height * factor };
}

/**
 * A refinement for GenerationRequest (and the schemas made from it with omit, which refinements
 * would forbid): the upscaled size stays within what the worker writes; the issue names `upscale`.
 */
export function upscaledSizeFits(request: Size, ctx: z.RefinementCtx): void {
  const { width, height } = outputSize(request);
  if (Math.max(width, height) > MAX_OUTPUT_SIDE) {
    ctx.addIssue({
      code: 'custom',
      path: ['upscale'],
      message: `${request.upscale} would make ${width}x${height} images; width and height times upscale must be at most ${MAX_OUTPUT_SIDE}`,
    });
  }
}

/** Queue `generation`: one generation's orchestrator job (the generate step's input, sealed secrets included). */
export type GenerationJobData = { generationId: string; tenant?: string; webhook?: WebhookSpec; input: GenerateStepInput; queued?: boolean; trace?: TraceCarrier };
