import sharp from 'sharp';
import type { Config } from '../../config';

/** What the upload may be, recognised by its first bytes rather than its name or declared type. */
const SIGNATURES: { format: 'jpeg' | 'png' | 'webp'; matches: (b: Buffer) => boolean }[] = [
  { format: 'jpeg', matches: (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { format: 'png', matches: (b) => b.length > 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  { format: 'webp', matches: (b) => b.length > 12 && b.toString('ascii', 0, 4) === 'RIFF' && b.toString('ascii', 8, 12) === 'WEBP' },
];

/** The accepted photo formats, for clients that check before they upload (the studio page). */
export const REFERENCE_FORMATS = SIGNATURES.map((s) => s.format);

/** A photo as the API checked it (type by content, fully decoded, within limits), upright and without metadata: not stored yet. */
export type ReferenceUpload = { data: Buffer; contentType: string; width: number; height: number };

/** Why a photo cannot be a reference; the API answers it as a 4xx naming the upload field (and which of them). */
export class InvalidReferenceImage extends Error {
  name = 'InvalidReferenceImage';
  constructor(
    readonly code: 'unsupported_image_type' | 'unreadable_image' | 'image_too_large' | 'image_too_small',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Checks that the upload is a real, fully decodable photo within the size limits, then re-encodes it
 * upright (EXIF orientation applied) with all metadata (GPS, camera, ...) stripped.
 */
export async function normalizeReferenceImage(upload: Buffer, config: Config, field = 'image_file'): Promise<ReferenceUpload> {
  const format = SIGNATURES.find((s) => s.matches(upload))?.format;
  if (!format) {
    throw new InvalidReferenceImage('unsupported_image_type', `${field} must be a JPEG, PNG or WebP image`);
  }
  const decoder = () => sharp(upload, { failOn: 'truncated', limitInputPixels: config.MAX_INPUT_PIXELS, sequentialRead: true });
  let meta: sharp.Metadata;
  try {
    // Header only: the pixel count is checked here to answer 413 before anything is decoded.
    meta = await sharp(upload, { limitInputPixels: false }).metadata();
  } catch {
    throw new InvalidReferenceImage('unreadable_image', `${field} could not be decoded; send a JPEG, PNG or WebP photo`);
  }
  const { width = 0, height = 0 } = meta;
  if (width * height > config.MAX_INPUT_PIXELS) {
    throw new InvalidReferenceImage('image_too_large', `${field} has ${width}x${height} pixels; the limit is ${config.MAX_INPUT_PIXELS} pixels`);
  }
  if (Math.min(width, height) < config.MIN_IMAGE_SIDE) {
    throw new InvalidReferenceImage('image_too_small', `${field} must be at least ${config.MIN_IMAGE_SIDE} pixels on each side`);
  }
  try {
    // A full decode: a truncated or corrupt file fails here, not in a GPU step later.
    const { data, info } = await decoder().rotate().toFormat(format, format === 'jpeg' ? { quality: 95 } : {}).toBuffer({ resolveWithObject: true });
    return { data, contentType: `image/${format}`, width: info.width, height: info.height };
  } catch {
    throw new InvalidReferenceImage('unreadable_image', `${field} is truncated or corrupt; send the complete photo (JPEG, PNG or WebP)`);
  }
}

const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp' };
/** The file extension a stored photo's key ends with, by its content type. */
export const photoExtension = (contentType: string) => EXTENSIONS[contentType] ?? 'bin';
