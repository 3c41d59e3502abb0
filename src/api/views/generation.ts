import type { PixelProvenance } from '../flows/contracts/generate';
import type { GenerationRequest } from '../flows/contracts/generation';
import type { GenerationDocument } from '../store/generationModel';
import type { ObjectStore } from '../store/objectStore';
import { pixelsView } from './pixelsView';

/** How long the presigned image URLs of a generation stay valid. */
const URL_TTL_S = 3600;

/** Whether images carry their bytes in base64: when the request asked (`return_base64`), always (`?include=base64`), or never (a list). */
export type Base64Images = 'as_requested' | 'always' | 'never';

/**
 * A generation as callers see it: images in the deployment's bucket get presigned URLs (base64 only
 * when asked); images in the caller's own bucket are named by bucket and key only.
 */
export async function generationView(objects: ObjectStore, doc: GenerationDocument, base64: Base64Images) {
  const request = doc.request as GenerationRequest;
  const withBytes = base64 === 'always' || (base64 === 'as_requested' && request.return_base64);
  const images = await Promise.all(
    (doc.images as { key: string; bucket?: string; width: number; height: number; contentType: string }[]).map(async (image) =>
      image.bucket
        ? // In the caller's own bucket: the deployment holds no keys to it outside the step.
          { key: image.key, bucket: image.bucket, width: image.width, height: image.height, content_type: image.contentType }
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
    created_at: doc.createdAt?.toISOString() ?? null,
    finished_at: doc.finishedAt?.toISOString() ?? null,
  };
}
