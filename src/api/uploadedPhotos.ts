import { createHash } from 'node:crypto';
import type { Config } from '../config';
import { InvalidReferenceImage, normalizeReferenceImage, type ReferenceUpload } from '../flows/portrait/referenceImage';
import { ApiError, referenceImageRefusal } from './errors';

/**
 * The photos of a multipart upload (POST /jobs' image_file parts, POST /identities' photos), each
 * checked as a single one always was (type by content, full decode, limits), in order, one at a
 * time (so one request decodes no more at once than before); the first refused one is named by its
 * index. `nameOf` is how a message names photo `index`. Nothing is stored until every photo passed.
 */
export async function checkedPhotos(files: Express.Multer.File[], config: Config, field: string, nameOf: (index: number) => string): Promise<ReferenceUpload[]> {
  const photos: ReferenceUpload[] = [];
  for (const [index, file] of files.entries()) {
    const name = nameOf(index);
    if (file.size === 0) throw new ApiError(400, 'empty_file', `${name} is empty: send the photo (JPEG, PNG or WebP) as ${field}`, field, { index });
    try {
      photos.push(await normalizeReferenceImage(file.buffer, config, name));
    } catch (err) {
      throw err instanceof InvalidReferenceImage ? referenceImageRefusal(err, index, field) : err;
    }
  }
  return photos;
}

/**
 * A request's identity for Idempotency-Key: its fields and the exact uploaded bytes (of a secret,
 * the caller passes only whether it was sent). Each photo's length goes before its bytes, so two
 * photos cannot hash like one made of both.
 */
export function uploadFingerprint(fields: unknown, files: Buffer[]): string {
  const hash = createHash('sha256').update(JSON.stringify(fields));
  for (const file of files) hash.update('\0').update(String(file.length)).update('\0').update(file);
  return hash.digest('hex');
}
