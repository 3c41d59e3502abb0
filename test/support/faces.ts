import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPU_PYTHON, GPU_WORKER } from './workerProcess';

export type FacePhotos = Record<'face' | 'mirrored' | 'brighter' | 'cropped' | 'noFace' | 'twoFaces', Buffer>;

/**
 * Real photos for the real face detector, from scikit-image (in the GPU worker's venv): its
 * astronaut (one face; mirrored, brighter and cropped as the same person's other photos would be),
 * its coffee cup (no face), and two astronauts side by side (two faces). JPEG.
 */
export function facePhotos(): FacePhotos {
  const dir = mkdtempSync(join(tmpdir(), 'face-photos-'));
  const script = `
from PIL import Image, ImageEnhance, ImageOps
from skimage import data
a = Image.fromarray(data.astronaut())
a.save("${dir}/face.jpg"); ImageOps.mirror(a).save("${dir}/mirrored.jpg")
ImageEnhance.Brightness(a).enhance(1.2).save("${dir}/brighter.jpg"); a.crop((40, 0, 470, 430)).save("${dir}/cropped.jpg")
Image.fromarray(data.coffee()).save("${dir}/noFace.jpg")
both = Image.new("RGB", (a.width * 2, a.height)); both.paste(a, (0, 0)); both.paste(ImageOps.mirror(a), (a.width, 0)); both.save("${dir}/twoFaces.jpg")`;
  execFileSync(GPU_PYTHON, ['-c', script], { cwd: GPU_WORKER });
  const names = ['face', 'mirrored', 'brighter', 'cropped', 'noFace', 'twoFaces'] as const;
  return Object.fromEntries(names.map((name) => [name, readFileSync(join(dir, `${name}.jpg`))])) as FacePhotos;
}
