import sharp from 'sharp';

/** A synthetic "photo": a gradient with a bright disc, big enough to pass the size checks. */
export async function referencePhoto(opts: { width?: number; height?: number; format?: 'jpeg' | 'png' | 'webp'; exifOrientation?: number } = {}) {
  const { width = 480, height = 600, format = 'jpeg' } = opts;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g"><stop offset="0" stop-color="#345"/><stop offset="1" stop-color="#cba"/></linearGradient></defs>
    <rect width="100%" height="100%" fill="url(#g)"/><circle cx="${width / 2}" cy="${height / 3}" r="${width / 5}" fill="#e8c4a0"/></svg>`;
  let image = sharp(Buffer.from(svg)).toFormat(format);
  if (opts.exifOrientation) image = image.withMetadata({ orientation: opts.exifOrientation });
  return image.toBuffer();
}

export const SEED_PARAMETERS = {
  purpose: 'professional_linkedin',
  attire: 'business_casual',
  background: 'modern_office',
  vibe: 'confident',
  lighting: 'studio_softbox',
  resolution: '4k',
} as const;
