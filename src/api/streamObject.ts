import type { Response } from 'express';
import { pipeline } from 'node:stream/promises';
import type { ObjectStore } from '../store/objectStore';
import { ApiError } from './errors';

/** An image of the caller's resource streamed from S3 as it is stored; 404 once it is gone. */
export async function streamImage(objects: ObjectStore, res: Response, key: string): Promise<void> {
  const object = await objects.get(key);
  if (!object) throw new ApiError(404, 'image_missing', 'the image is no longer stored');
  res.type(object.contentType ?? 'application/octet-stream');
  if (object.contentLength !== undefined) res.setHeader('Content-Length', object.contentLength);
  await pipeline(object.body, res);
}
