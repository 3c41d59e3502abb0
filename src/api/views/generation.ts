import { z } from 'zod';
import { JobId, S3Key } from '../../flows/contracts/common';
import type { GeneratedImage, PixelProvenance } from '../../flows/contracts/generateStep';
import { GenerationRequest } from '../../flows/contracts/generation';
import type { GenerationDocument } from '../../store/generationModel';
import type { ObjectStore } from '../../store/objectStore';
import { GENERATION_STATUSES } from '../../store/statuses';
import { pixelsView, PixelsView } from './pixels';
import { ENDING_FIELDS } from './ending';
import { pageOf } from './page';
import { iso } from './timestamp';

/** How long the presigned image URLs of a generation stay valid. */
const URL_TTL_S = 3600;

/** Whether images carry their bytes in base64: when the request asked (`return_base64`), always (`?include=base64`), or never (a list). */
export type Base64Images = 'as_requested' | 'always' | 'never';

const ImageSize = { key: S3Key, width: z.number().int(), height: z.number().int(), content_type: z.string() };

/** An image in the caller's own bucket: named by bucket and key only (the deployment holds no keys to it outside the step). */
const OwnBucketImage = z.strictObject({ ...ImageSize, bucket: z.string() });

/** An image in the deployment's bucket: a presigned URL, and its bytes when asked. */
const DeploymentImage = z.strictObject({
  ...ImageSize,
  url: z.string(),
  url_expires_in: z.number().int(),
  base64: z.string().nullable().optional().describe('with return_base64 or ?include=base64; null when the object is gone'),
});

/** A generation as callers see it (GET /generations/:id, POST /generations, each of GET /generations). */
export const GenerationView = z.object({
  generation_id: JobId,
  status: z.enum(GENERATION_STATUSES),
  request: GenerationRequest.omit({ secrets: true }).describe('the request as accepted, defaults filled in; secrets are never returned'),
  seed: z.number().int(),
  images: z.array(z.union([DeploymentImage, OwnBucketImage])),
  timings: z.record(z.string(), z.number()).nullable(),
  pixels: PixelsView.nullable(),
  ...ENDING_FIELDS,
});

export const GenerationList = pageOf('generations', GenerationView);

/** POST /generations/:id/cancel. */
export const GenerationCancelling = z.object({ generation_id: JobId, status: z.literal('cancelling') });

export type GenerationView = z.output<typeof GenerationView>;

/**
 * A generation as callers see it: images in the deployment's bucket get presigned URLs (base64 only
 * when asked); images in the caller's own bucket are named by bucket and key only.
 */
export async function generationView(objects: ObjectStore, doc: GenerationDocument, base64: Base64Images): Promise<GenerationView> {
  const request = doc.request as GenerationView['request'];
  const withBytes = base64 === 'always' || (base64 === 'as_requested' && request.return_base64);
  const images = await Promise.all(
    (doc.images as z.output<typeof GeneratedImage>[]).map(async (image) =>
      image.bucket
        ? { key: image.key, bucket: image.bucket, width: image.width, height: image.height, content_type: image.contentType }
        : {
            key: image.key,
            width: image.width,
            height: image.height,
            content_type: image.contentType,
            url: await objects.presignedGetUrl(image.key, URL_TTL_S),
            url_expires_in: URL_TTL_S,
            ...(withBytes ? { base64: (await objects.getBuffer(image.key))?.toString('base64') ?? null } : {}),
          },
    ),
  );
  return {
    generation_id: doc._id.toHexString(),
    status: doc.status,
    request,
    seed: doc.seed,
    images,
    timings: doc.timings ?? null,
    pixels: pixelsView(doc.pixels as PixelProvenance | undefined),
    error: doc.error ?? null,
    created_at: iso(doc.createdAt),
    finished_at: iso(doc.finishedAt),
  };
}
