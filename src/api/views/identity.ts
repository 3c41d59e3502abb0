import { z } from 'zod';
import { IdentityId, S3Key } from '../../flows/contracts/common';
import { EvaluateIdentityStepResult } from '../../flows/contracts/evaluateIdentityStep';
import type { TrainingRecipe } from '../../flows/contracts/trainIdentityStep';
import type { TrainingProgress } from '../../flows/identity/trainingProgress';
import { WebhookSpec } from '../../flows/webhooks/events';
import type { IdentityDocument } from '../../store/identityModel';
import { IDENTITY_STATUSES } from '../../store/statuses';
import { ENDING_FIELDS } from './ending';
import { pageOf } from './page';
import { iso } from './timestamp';

const Loss = z.number().min(0);

/** An identity as callers see it (GET /identities/:id, each of GET /identities): snake_case, times as ISO strings. */
export const IdentityView = z.object({
  identity_id: IdentityId,
  name: z.string(),
  status: z.enum(IDENTITY_STATUSES),
  trigger_token: z.string().describe('the word that stands for the person in captions and in the instruction of every portrait of this identity'),
  training: z.object({ steps: z.number().int(), rank: z.number().int(), learning_rate: z.number(), resolution: z.number().int() }),
  photos: z
    .array(z.object({ key: S3Key, url: z.string(), width: z.number().int(), height: z.number().int(), caption: z.string().nullable() }))
    .describe('as sent, in order (url: the image, with your key); each caption once the VLM wrote it'),
  progress: z
    .object({ step: z.number().int(), total: z.number().int(), loss: Loss.nullable(), recent_losses: z.array(Loss), eta_seconds: z.number().int().nullable() })
    .nullable()
    .describe('while training: the step reached, the last losses reported (oldest first), the seconds left at the recent pace'),
  lora: z.object({ steps_done: z.number().int(), loss_average: Loss, resumed_from_step: z.number().int() }).nullable().describe('once trained'),
  evaluation: z
    .object({
      median_distance_with_lora: z.number().nullable(),
      median_distance_without_lora: z.number().nullable(),
      renders_with_face: z.object({ with_lora: z.number().int(), without_lora: z.number().int() }),
      renders: z.array(z.object({ key: S3Key, url: z.string(), prompt: z.string(), with_lora: z.boolean(), face_found: z.boolean(), distance: z.number().nullable() })),
    })
    .nullable()
    .describe('held-out portraits rendered with and without the LoRA, and their face distance to the photos (lower is closer; the gate accepts at most its threshold): whether training helped'),
  webhook: WebhookSpec.nullable(),
  ...ENDING_FIELDS,
  updated_at: ENDING_FIELDS.created_at,
});

export const IdentityList = pageOf('identities', IdentityView);

/** What POST /identities, its replay and POST /identities/:id/cancel answer. */
export const IdentityAccepted = z.object({ identity_id: IdentityId, status: z.string(), message: z.string() });

/** POST /identities/photo-check: one photo's face check, as POST /identities would apply it. */
export const PhotoCheckView = z.object({
  accepted: z.boolean(),
  reason: z.string().nullable().describe('why it would be refused; null when accepted'),
  face_box: z.array(z.number().int()).length(4).nullable().describe('[left, top, right, bottom] in the upright photo'),
});

export type IdentityView = z.output<typeof IdentityView>;

type Prepared = { photos?: { key: string; caption: string }[] } | undefined;
type Lora = { stepsDone: number; lossAverage: number; resumedFromStep: number } | undefined;

export function identityView(doc: IdentityDocument, progress: TrainingProgress | null = null): IdentityView {
  const training = doc.training as TrainingRecipe;
  const captions = (doc.prepared as Prepared)?.photos?.map((p) => p.caption) ?? [];
  const lora = doc.lora as Lora;
  const evaluation = doc.evaluation as z.output<typeof EvaluateIdentityStepResult> | undefined;
  const id = doc._id.toHexString();
  return {
    identity_id: id,
    name: doc.name,
    status: doc.status,
    trigger_token: doc.triggerToken,
    training: { steps: training.steps, rank: training.rank, learning_rate: training.learningRate, resolution: training.resolution },
    photos: doc.photos.map((p, i) => ({ key: p.key, url: `/identities/${id}/photos/${i}/image`, width: p.width, height: p.height, caption: captions[i] ?? null })),
    progress: progress && { step: progress.step, total: progress.total, loss: progress.loss, recent_losses: progress.recentLosses, eta_seconds: progress.etaSeconds },
    lora: lora ? { steps_done: lora.stepsDone, loss_average: lora.lossAverage, resumed_from_step: lora.resumedFromStep } : null,
    evaluation: evaluation
      ? {
          median_distance_with_lora: evaluation.summary.medianDistanceWithLora,
          median_distance_without_lora: evaluation.summary.medianDistanceWithoutLora,
          renders_with_face: { with_lora: evaluation.summary.rendersWithFace.withLora, without_lora: evaluation.summary.rendersWithFace.withoutLora },
          renders: evaluation.renders.map((r, i) => ({ key: r.key, url: `/identities/${id}/evaluation/${i}/image`, prompt: r.prompt, with_lora: r.withLora, face_found: r.faceFound, distance: r.distance })),
        }
      : null,
    webhook: (doc.webhook as IdentityView['webhook']) ?? null,
    error: doc.error ?? null,
    created_at: iso(doc.createdAt),
    finished_at: iso(doc.finishedAt),
    updated_at: iso(doc.updatedAt),
  };
}
