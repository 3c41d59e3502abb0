import type { Queue } from 'bullmq';
import { Types } from 'mongoose';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { JobModel, type JobDocument } from '../../store/jobModel';
import { isDuplicateKey, markUnfinishedFailed } from '../../store/mongo';
import type { ObjectStore } from '../../store/objectStore';
import type { StoredPhoto } from '../../store/storedPhotoSchema';
import { RETRYABLE_STATUSES, type JobStatus } from '../../store/statuses';
import { currentTraceCarrier } from '../../telemetry';
import type { LoraSpec } from '../contracts/generateStep';
import type { PortraitParameters } from '../contracts/portraitParameters';
import { PortraitState } from '../contracts/portraitState';
import { portraitJobId, referenceImageKey as referenceKeyOf } from '../ids';
import { orchestratorJobOptions, type ParentJob, type QueuePayloads } from '../queues';
import { sealSecrets, secretsBinding } from '../secrets';
import type { WebhookSpec } from '../webhooks/events';
import { photoExtension, type ReferenceUpload } from './referenceImage';
import { startRetryCycle } from './stateMachine';

export type IdentityReference = NonNullable<PortraitState['identity']> & { photos: StoredPhoto[] };

export type SubmissionDeps = { config: Config; objects: ObjectStore; portraitQueue: Queue<QueuePayloads['portrait']> };

/** What a new portrait job is: whose, with which parameters and photo, and (optionally) its id. */
export type PortraitRequest = {
  tenant: string;
  parameters: PortraitParameters;
  /** The person's photos, 1 to MAX_REFERENCE_PHOTOS, in upload order (a portrait of an identity has its photos instead). */
  references: ReferenceUpload[];
  /** A portrait of a learnt identity: its best photos (stored already, under the identity), its LoRA and trigger token, its embeddings. */
  identity?: IdentityReference;
  jobId?: string;
  webhook?: WebhookSpec;
  loras?: LoraSpec[];
  /** Images per attempt (best of N). */
  candidates?: number;
  /** A private LoRA repo's token: sealed before it is stored or queued. */
  secrets?: { hf_token: string };
};

/** POST /jobs: create the job, then start its orchestrator. */
export async function submitPortraitJob(deps: SubmissionDeps, request: PortraitRequest): Promise<{ jobId: string }> {
  const state = await createPortraitJob(deps, request);
  await enqueuePortraitJob(deps, state);
  logger.info('portrait job submitted', { jobId: state.jobId });
  return { jobId: state.jobId };
}

/** Reference photos into S3, then the Job document (pending); returns the orchestrator's initial state. */
export async function createPortraitJob(deps: SubmissionDeps, request: PortraitRequest): Promise<PortraitState> {
  const { tenant, parameters, references, webhook, loras = [], candidates = 1 } = request;
  const jobId = request.jobId ?? new Types.ObjectId().toHexString();
  const secrets = request.secrets ? sealSecrets(deps.config.SECRETS_KEY!, secretsBinding(jobId), request.secrets) : undefined;
  const { identity } = request;
  // An identity's photos stay where they are (its erasure finds them); uploaded ones go under the job.
  const stored: StoredPhoto[] = identity?.photos ?? references.map((reference, index) => ({
    key: referenceKeyOf(jobId, photoExtension(reference.contentType), index),
    contentType: reference.contentType,
    width: reference.width,
    height: reference.height,
    bytes: reference.data.length,
  }));
  if (!identity) await Promise.all(references.map((reference, index) => deps.objects.put(stored[index].key, reference.data, reference.contentType)));
  const identityState = identity && { identityId: identity.identityId, loraKey: identity.loraKey, triggerToken: identity.triggerToken, embeddingsKey: identity.embeddingsKey };
  const referenceImageKeys = stored.map((r) => r.key);
  await JobModel.create({
    _id: jobId,
    tenant,
    status: 'pending',
    webhook,
    parameters,
    candidates,
    loras,
    sealedSecrets: secrets,
    reference: stored[0],
    references: stored,
    ...(identity ? { identityId: identity.identityId } : {}),
  }).catch((err) => {
    // A replayed batch fan-out (derived ids): the document exists and is left as it is.
    if (!isDuplicateKey(err)) throw err;
  });
  return PortraitState.parse({ jobId, tenant, webhook, parameters, candidates, loras, secrets, referenceImageKey: referenceImageKeys[0], referenceImageKeys, identity: identityState, maxAttempts: deps.config.MAX_ATTEMPTS, trace: currentTraceCarrier() });
}

/**
 * POST /jobs/:id/retry: the job's state is rebuilt from its document, a new attempt cycle starts
 * (history kept), and a new orchestrator job runs it; a portrait of an identity renders with what
 * the identity is now (`identity`, which the caller found ready). Returns false when the job is not
 * (or no longer) in a failed state, e.g. a concurrent retry won.
 */
export async function retryPortraitJob(deps: SubmissionDeps, doc: JobDocument, identity?: IdentityReference): Promise<boolean> {
  const jobId = doc._id.toHexString();
  const previous = PortraitState.parse({
    jobId,
    tenant: doc.tenant,
    webhook: doc.webhook ?? undefined,
    parameters: doc.parameters,
    candidates: doc.candidates ?? 1,
    loras: doc.loras ?? [],
    secrets: doc.sealedSecrets ?? undefined,
    referenceImageKey: doc.reference!.key,
    // A job stored before several photos has only `reference`.
    referenceImageKeys: doc.references?.length ? doc.references.map((r) => r.key) : undefined,
    identity: identity && { identityId: identity.identityId, loraKey: identity.loraKey, triggerToken: identity.triggerToken, embeddingsKey: identity.embeddingsKey },
    maxAttempts: Math.max(1, (doc.attempts as unknown[]).length),
    attempts: doc.attempts,
    report: doc.report ?? undefined,
    error: doc.error ?? undefined,
    cycle: doc.cycle ?? 1,
    history: doc.history ?? [],
  });
  const state = { ...startRetryCycle(previous, doc.status as JobStatus, deps.config.MAX_ATTEMPTS), trace: currentTraceCarrier() };
  const claimed = await JobModel.updateOne(
    { _id: jobId, status: { $in: RETRYABLE_STATUSES }, cycle: previous.cycle, inputsErasedAt: { $exists: false } },
    { $set: { status: 'pending', cycle: state.cycle, history: state.history, error: null, report: null, result: null, finishedAt: null } },
  );
  if (claimed.modifiedCount !== 1) return false;
  await enqueuePortraitJob(deps, state);
  logger.info('portrait job retried', { jobId, cycle: state.cycle });
  return true;
}

/**
 * Adds the orchestrator job. Its BullMQ id is derived from the Mongo id, so a repeated enqueue is a
 * no-op; if the enqueue fails the document is marked failed rather than left pending forever.
 */
export async function enqueuePortraitJob(deps: SubmissionDeps, state: PortraitState, parent?: ParentJob): Promise<void> {
  const { jobId } = state;
  try {
    await deps.portraitQueue.add('portrait', state, orchestratorJobOptions(portraitJobId(jobId, state.cycle), deps.config.STEP_RETENTION_S, parent));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.error('could not enqueue portrait job', { jobId, error: message });
    await markUnfinishedFailed(JobModel, jobId, 'could not enqueue the job');
    throw err;
  }
}
