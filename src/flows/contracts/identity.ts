import { z } from 'zod';
import { WebhookSpec } from '../webhooks/events';
import { IdentityId, TraceCarrier } from './common';
import { EvaluateIdentityStepResult } from './evaluateIdentityStep';
import { TrainingPhoto } from './prepareIdentityStep';
import { TrainIdentityStepResult, TrainingRecipe } from './trainIdentityStep';

/** How many photos make an identity: fewer than 4 teach a LoRA too little (Aragon asks 6, fal ≥ 10), more than 20 add GPU time, not likeness. */
export const IDENTITY_PHOTOS = { min: 4, max: 20 } as const;

/**
 * POST /identities' `training`, each bound a choice: `steps` up to 4,000 (fal's portrait trainer
 * defaults to 2,500; more overfits one person's few photos and only costs GPU time), `rank` up to 64
 * (16 is Replicate's and our default; the LoRA grows with it, 64 is already ~4x its bytes),
 * `learning_rate` up to 1e-3 (Replicate's 4e-4 with room; beyond it LoRAs on flow models diverge),
 * `resolution` the sides the models are trained at (512 is diffusers' klein script's; 1024 costs
 * ~4x per step). Defaults: the worker's recipe (gpu-worker training/recipe.py).
 */
export const IdentityTrainingOptions = z.strictObject({
  steps: z.number().int().min(1).max(4000).default(1000),
  rank: z.number().int().min(1).max(64).default(16),
  learning_rate: z.number().gt(0).max(1e-3).default(1e-4),
  resolution: z.literal([256, 512, 768, 1024], { error: 'must be 256, 512, 768 or 1024' }).default(512),
});
export type IdentityTrainingOptions = z.infer<typeof IdentityTrainingOptions>;

/** The identity's steps, in order: the workflow's stages, each one GPU step (orchestrator.ts). */
export const IDENTITY_STEPS = ['prepare_identity', 'caption_identity', 'train_identity', 'evaluate_identity'] as const;
export type IdentityStep = (typeof IDENTITY_STEPS)[number];

/**
 * The identity orchestrator's state, in its BullMQ job's data (a restarted orchestrator resumes
 * from it): which stage it is at, whether that stage's step is queued, and what earlier steps made.
 */
export const IdentityJobData = z.object({
  identityId: IdentityId,
  tenant: z.string(),
  webhook: WebhookSpec.optional(),
  trace: TraceCarrier.optional(),
  /** Index into IDENTITY_STEPS of the step being run (IDENTITY_STEPS.length: all done). */
  stage: z.number().int().min(0).max(IDENTITY_STEPS.length),
  queued: z.boolean(),
  recipe: TrainingRecipe,
  triggerToken: z.string(),
  photoKeys: z.array(z.string()).min(1),
  /** prepare_identity's framed photos and embeddings; caption_identity then puts the VLM's captions on the photos. */
  prepared: z.object({ photos: z.array(TrainingPhoto), embeddingsKey: z.string() }).optional(),
  lora: TrainIdentityStepResult.optional(),
  evaluation: EvaluateIdentityStepResult.optional(),
});
export type IdentityJobData = z.infer<typeof IdentityJobData>;
