import { z } from 'zod';
import type { PixelProvenance } from '../../flows/contracts/generateStep';

/** How an image's pixels were made, as callers see it (GET /jobs/:id per attempt, GET /generations/:id). */
export const PixelsView = z
  .object({
    native_width: z.number().int(),
    native_height: z.number().int(),
    method: z.enum(['native', 'super_resolution', 'resize']),
    factor: z.number(),
    upscalers: z.array(z.object({ model: z.string(), scale: z.number().int() })),
    seconds: z.number(),
  })
  .describe(
    'the size the diffusion model rendered and how it became the requested size: native (as rendered), super_resolution (the upscalers, in order), or resize (Lanczos: no upscaler configured); null from workers older than the upscaler',
  );

export function pixelsView(pixels: PixelProvenance | undefined | null): z.infer<typeof PixelsView> | null {
  if (!pixels) return null;
  return {
    native_width: pixels.nativeWidth,
    native_height: pixels.nativeHeight,
    method: pixels.method,
    factor: pixels.factor,
    upscalers: pixels.upscalers ?? [],
    seconds: pixels.seconds,
  };
}
