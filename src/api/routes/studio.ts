import express, { Router } from 'express';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Config } from '../../config';
import { MAX_REFERENCE_PHOTOS } from '../../flows/contracts/common';
import { IDENTITY_PHOTOS } from '../../flows/contracts/identity';
import { REFERENCE_FORMATS } from '../../flows/portrait/referenceImage';

/** Where scripts/build-studio.ts writes the page; built by the install and test commands, never committed. */
export const STUDIO_BUILD_DIR = join(__dirname, '..', '..', '..', 'dist', 'studio');
export const STUDIO_BUILD_COMMAND = 'npx tsx scripts/build-studio.ts';

/**
 * The studio page at `/` (its files under `/studio/`) and the upload rules it applies to each photo
 * before any is sent (a portrait's 1 to max_photos, an identity's identity_photos.min to .max).
 * Unauthenticated like /docs: the page holds no data; every call it makes carries the visitor's API
 * key. Whether the build exists is checked per request, so building it needs no restart.
 */
export function studioRouter(config: Config, dir = STUDIO_BUILD_DIR): Router {
  const router = Router();
  router.get('/', (_req, res) => {
    const index = join(dir, 'index.html');
    if (!existsSync(index)) {
      return void res
        .status(503)
        .type('text/plain')
        .send(`The studio page is not built yet. Build it in the project folder with\n\n  ${STUDIO_BUILD_COMMAND}\n\nthen reload this page. The API itself is running: see /docs.\n`);
    }
    res.sendFile(index, { headers: { 'Cache-Control': 'no-cache' } });
  });
  router.get('/studio/upload-rules.json', (_req, res) => {
    res.json({
      types: REFERENCE_FORMATS.map((f) => `image/${f}`),
      max_bytes: config.MAX_UPLOAD_BYTES,
      max_pixels: config.MAX_INPUT_PIXELS,
      min_side: config.MIN_IMAGE_SIDE,
      max_photos: MAX_REFERENCE_PHOTOS,
      identity_photos: IDENTITY_PHOTOS,
    });
  });
  router.use('/studio', express.static(dir, { index: false, setHeaders: (res) => res.setHeader('Cache-Control', 'no-cache') }));
  return router;
}

/**
 * The origin presigned S3 URLs point at (MinIO's own port locally, the bucket's host on AWS). A
 * generation's images are shown straight from those URLs, so the page's CSP must allow it in img-src.
 * It follows the S3 client's choice: the bucket goes in the host name (virtual-hosted style) unless
 * path style is forced, the endpoint is an IP address, or the bucket name has dots; otherwise in the path.
 */
export function objectStoreOrigin(config: Pick<Config, 'S3_ENDPOINT' | 'S3_BUCKET' | 'S3_REGION' | 'S3_FORCE_PATH_STYLE'>): string {
  const endpoint = new URL(config.S3_ENDPOINT ?? `https://s3.${config.S3_REGION}.amazonaws.com`);
  const pathStyle = config.S3_FORCE_PATH_STYLE || isIP(endpoint.hostname.replace(/^\[|\]$/g, '')) !== 0 || config.S3_BUCKET.includes('.');
  return pathStyle ? endpoint.origin : `${endpoint.protocol}//${config.S3_BUCKET}.${endpoint.host}`;
}
