import { z } from 'zod';
import { AttemptNumber, JobId, ReferenceImageKeys, S3Key, TraceCarrier } from './common';
import { TriggerToken } from './prepareIdentityStep';

/**
 * Hugging Face's repo-id grammar (huggingface_hub's validate_repo_id): owner/name, each part of
 * letters, digits, "_", "-" and ".", starting and ending with a letter, digit or "_", at most 96
 * characters, never "--" or "..". A name like "../a" can never be downloaded, so it is refused here.
 */
const HF_REPO_PART = '\\w(?:[\\w.-]{0,94}\\w)?';
const HF_REPO_ID = new RegExp(`^(?!.*(?:--|\\.\\.))${HF_REPO_PART}/${HF_REPO_PART}$`);

export const LoraSpec = z.strictObject({
  repo: z.string().regex(HF_REPO_ID, 'must be a Hugging Face repo id like owner/name (letters, digits, "_", "-", "."; no "..")'),
  /** A file at the repo's top level; safetensors only, since other formats are pickles that run code when loaded. */
  weight_name: z
    .string()
    .max(200)
    .regex(/^(?!.*\.\.)\w[\w.-]*\.safetensors$/, 'must be a file name ending in .safetensors, like lora.safetensors (no folders, no "..")')
    .optional(),
  scale: z.number().min(-4).max(4).default(1),
});

/**
 * How much bigger than the rendered image the output is, at least: the worker renders
 * width/upscale x height/upscale (or smaller, within the model's native budget) and upscales.
 */
export const UpscaleFactor = z.literal([1, 2, 4], { error: 'must be 1, 2 or 4' });

/**
 * How an image's pixels were made: the size the diffusion model rendered, and how that became the
 * requested size.
 */
export const PixelProvenance = z.object({
  nativeWidth: z.number().int().positive(),
  nativeHeight: z.number().int().positive(),
  /** native: rendered at the requested size; super_resolution: by the models in `upscalers`; resize: a plain Lanczos resize (no upscaler configured). */
  method: z.enum(['native', 'super_resolution', 'resize']),
  /** Output side / rendered side. */
  factor: z.number().positive(),
  /** The super-resolution passes, in order (a Lanczos fit follows where they overshoot the size). */
  upscalers: z.array(z.object({ model: z.string(), scale: z.number().int().min(2) })).optional(),
  /** Spent upscaling the step's images. */
  seconds: z.number().min(0),
});

/** The largest side the worker writes. */
export const MAX_OUTPUT_SIDE = 4096;

/**
 * Queue `generate`: a portrait attempt (with `referenceImageKey`: the image-editing model renders it
 * from the photo) or a plain text-to-image generation.
 */
export const GenerateStepInput = z.strictObject({
  trace: TraceCarrier.optional(),
  jobId: JobId,
  attempt: AttemptNumber,
  prompt: z.string().min(1).max(4000),
  negativePrompt: z.string().max(2000).optional(),
  seed: z.number().int().min(0).max(2 ** 32 - 1),
  /** Final output size; the worker upscales when this exceeds what the model generates natively. */
  width: z.number().int().min(256).max(MAX_OUTPUT_SIDE).multipleOf(16),
  height: z.number().int().min(256).max(MAX_OUTPUT_SIDE).multipleOf(16),
  upscale: UpscaleFactor.optional(),
  numImages: z.number().int().min(1).max(4),
  /** Denoising steps and guidance; the worker's configured defaults when absent. */
  steps: z.number().int().min(1).max(100).optional(),
  guidance: z.number().min(0).max(30).optional(),
  outputFormat: z.enum(['png', 'webp']).optional(),
  /** Identity reference for the portrait workflow; absent for plain generations. */
  referenceImageKey: S3Key.optional(),
  /** Every photo of the person, the first being referenceImageKey: a pipeline that takes a list gets them all, one that takes one image the first. */
  referenceImageKeys: ReferenceImageKeys.optional(),
  loras: z.array(LoraSpec).max(8),
  /**
   * A portrait of an identity: its trained LoRA (`train_identity`'s .safetensors, in the deployment's
   * bucket), applied with `loras` through the same adapter slots, and its trigger token, which the
   * worker puts into the instruction as the training captions name the person (`a photo of <token> person, ...`).
   */
  identityLora: z
    .strictObject({
      key: S3Key,
      triggerToken: TriggerToken,
      scale: z.number().min(0).max(4).default(1),
    })
    .optional(),
  /** A caller's own bucket for the images (its keys travel in `secrets`); the deployment's bucket otherwise. */
  destination: z
    .strictObject({
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name'),
      prefix: z.string().max(512).regex(/^[A-Za-z0-9!_.*'()/-]*$/, 'must be a safe S3 key prefix').optional(),
      region: z.string().max(64).optional(),
      endpoint: z.url({ protocol: /^https?$/ }).max(2048).optional(),
    })
    .optional(),
  /** Per-request secrets sealed with the deployment's SECRETS_KEY (src/flows/secrets.ts), bound to jobId and destination. */
  secrets: z.string().max(8192).optional(),
  /** Images are written as `<outputPrefix>/<index>.<png|webp>`. */
  outputPrefix: S3Key,
});

export const GeneratedImage = z.object({
  key: S3Key,
  /** Set when the image went to the caller's destination bucket. */
  bucket: z.string().optional(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  contentType: z.string(),
});

export const GenerateStepResult = z.object({
  images: z.array(GeneratedImage).min(1),
  seed: z.number().int(),
  timings: z.record(z.string(), z.number()).default({}),
  /** Absent from workers older than the upscaler. */
  pixels: PixelProvenance.optional(),
});

export type LoraSpec = z.infer<typeof LoraSpec>;
export type GenerateStepInput = z.infer<typeof GenerateStepInput>;
export type GenerateStepResult = z.infer<typeof GenerateStepResult>;
export type PixelProvenance = z.infer<typeof PixelProvenance>;
