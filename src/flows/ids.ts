import { createHash } from 'node:crypto';
import type { StepName } from './steps/registry';

/**
 * Every deterministic id, the basis of every idempotency guarantee: a replayed transition or
 * fan-out builds the same id, so BullMQ adds nothing twice and a webhook receiver sees one id.
 */

/** A stable 24-hex id (the shape of the public MongoDB ids) from its parts: a batch's children, a schedule's firings. */
export const derivedId = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 24);
/** A batch's generation for its request at `index`: the fan-out makes it, erasure finds it again. */
export const batchGenerationId = (batchId: string, index: number) => derivedId(batchId, 'generation', String(index));
/** A batch's portrait job for one inbox photo (the same photo unchanged, the same job). */
export const inboxJobId = (batchId: string, key: string, etag: string) => derivedId(batchId, key, etag);
/** The batch one firing of a schedule starts. */
export const scheduleBatchId = (firingJobId: string) => derivedId('schedule-firing', firingJobId);

/** The orchestrator job of a portrait job's cycle (a retry starts cycle 2, 3, ...). */
export const portraitJobId = (jobId: string, cycle = 1) => (cycle === 1 ? `portrait-${jobId}` : `portrait-${jobId}-c${cycle}`);
export const generationJobId = (generationId: string) => `generation-${generationId}`;
export const batchJobId = (batchId: string) => `batch-${batchId}`;
export const identityJobId = (identityId: string) => `identity-${identityId}`;

/**
 * A GPU step of a workflow: per attempt for a portrait's prompt/generate/validate, once per cycle
 * for its report (a retry cycle's report must not meet the earlier cycle's), once for a generation.
 */
export function stepJobId(jobId: string, step: StepName, attempt?: number, cycle = 1): string {
  const id = attempt === undefined ? `${jobId}-${step}` : `${jobId}-a${attempt}-${step}`;
  return step === 'report' && cycle > 1 ? `${id}-c${cycle}` : id;
}

/** A webhook's id (its `webhook-id` header and notify job id): one per transition of a resource. */
export const webhookId = (resourceId: string, ...transition: (string | number)[]) => `whk-${[resourceId, ...transition].join('-')}`;

/**
 * Where a resource's objects live in S3_BUCKET: everything of a portrait job (its reference photo,
 * every attempt's images) under one prefix, a generation's images under another, so erasing one
 * deletes one prefix. Images sent to a caller's own `destination` bucket are the caller's.
 */
export const jobObjectsPrefix = (jobId: string) => `jobs/${jobId}/`;
export const generationObjectsPrefix = (generationId: string) => `generations/${generationId}/`;
/** Everything of an identity (its photos, what its steps made of them, its LoRA and checkpoints): biometric data, erased as one prefix. */
export const identityObjectsPrefix = (identityId: string) => `identities/${identityId}/`;
/**
 * A job's reference photos, `<prefix>reference.<ext>` then `<prefix>reference.<n>.<ext>` for the
 * n-th of several: all under `reference.`, the inputs that retention erases first.
 */
export const referenceImageKey = (jobId: string, extension: string, index = 0) =>
  `${jobObjectsPrefix(jobId)}reference.${index === 0 ? '' : `${index + 1}.`}${extension}`;
