import type { Config } from '../../config';
import type { IdentityStatus } from '../../store/statuses';
import { IDENTITY_STEPS, type IdentityJobData, type IdentityStep } from '../contracts/identity';
import { identityObjectsPrefix } from '../ids';
import type { StepInput, StepResult } from '../steps/registry';

/**
 * Each stage of an identity's workflow (contracts/identity.ts IDENTITY_STEPS): the status a reader
 * sees while it runs, the step's payload made from the workflow's state, and the state its result
 * makes. Every object goes under the identity's prefix, so erasure finds it.
 */

export const STATUS_OF_STEP: Record<IdentityStep, IdentityStatus> = {
  prepare_identity: 'preparing',
  caption_identity: 'preparing',
  train_identity: 'training',
  evaluate_identity: 'evaluating',
};

/** Where an identity's objects go: the photos as sent, the framed ones, the checkpoint, the LoRA, the evaluation's renders. */
export const identityKeys = (identityId: string) => {
  const prefix = identityObjectsPrefix(identityId);
  return {
    photosPrefix: `${prefix}photos`,
    prepared: `${prefix}prepared`,
    checkpoint: `${prefix}training/checkpoint.bin`,
    lora: `${prefix}lora.safetensors`,
    evaluation: `${prefix}evaluation`,
  };
};

export function stepInput<S extends IdentityStep>(step: S, data: IdentityJobData): StepInput<S>;
export function stepInput(step: IdentityStep, data: IdentityJobData): StepInput<IdentityStep> {
  const { identityId, recipe, triggerToken } = data;
  const keys = identityKeys(identityId);
  switch (step) {
    case 'prepare_identity':
      return { identityId, photoKeys: data.photoKeys, resolution: recipe.resolution, triggerToken, outputPrefix: keys.prepared };
    case 'caption_identity':
      return { identityId, photos: data.prepared!.photos.map(({ key }) => ({ key })), triggerToken };
    case 'train_identity':
      return { identityId, photos: data.prepared!.photos, recipe, checkpointKey: keys.checkpoint, loraKey: keys.lora };
    case 'evaluate_identity':
      return {
        identityId,
        embeddingsKey: data.prepared!.embeddingsKey,
        loraKey: data.lora!.loraKey,
        seed: recipe.seed,
        size: recipe.resolution,
        triggerToken,
        outputPrefix: keys.evaluation,
      };
  }
}

/** The state a step's result makes, and what of it the Identity document shows. */
export function foldResult<S extends IdentityStep>(step: S, data: IdentityJobData, result: StepResult<S>): { data: IdentityJobData; fields: Record<string, unknown> } {
  const next = { ...data, stage: IDENTITY_STEPS.indexOf(step) + 1, queued: false };
  switch (step) {
    case 'prepare_identity': {
      const prepared = result as StepResult<'prepare_identity'>;
      return { data: { ...next, prepared }, fields: {} };
    }
    case 'caption_identity': {
      const photos = (result as StepResult<'caption_identity'>).photos;
      return { data: { ...next, prepared: { ...data.prepared!, photos } }, fields: { 'prepared.photos': photos, 'prepared.embeddingsKey': data.prepared!.embeddingsKey } };
    }
    case 'train_identity': {
      const lora = result as StepResult<'train_identity'>;
      return { data: { ...next, lora }, fields: { lora } };
    }
    default: {
      const evaluation = result as StepResult<'evaluate_identity'>;
      return { data: { ...next, evaluation }, fields: { evaluation } };
    }
  }
}

/** How long a stage's step may take from being queued: training, the long one, has a deadline of its own. */
export const stepTimeoutMs = (config: Config, step: IdentityStep) => (step === 'train_identity' ? config.IDENTITY_TRAINING_TIMEOUT_MS : config.STEP_TIMEOUT_MS);
