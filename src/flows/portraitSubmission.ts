import { Types } from 'mongoose';
import type { Queue } from 'bullmq';
import type { Config } from '../config';
import { logger } from '../logger';
import { JobModel, markJobFailed } from '../store/jobModel';
import type { ObjectStore } from '../store/objectStore';
import type { PortraitParameters } from './contracts/portraitParameters';
import { PortraitState } from './contracts/portraitState';
import { portraitJobId } from './queues';
import type { WebhookSpec } from './webhooks/events';

export type ReferenceUpload = { data: Buffer; contentType: string; width: number; height: number };

const EXTENSIONS: Record<string, string> = { 'image/jpeg': 'jpg', 'image/png': 'png', 'image/webp': 'webp' };

export type SubmissionDeps = { config: Config; objects: ObjectStore; portraitQueue: Queue };

/** What a new portrait job is: whose, with which parameters and photo, and (optionally) its id. */
export type PortraitRequest = {
  tenant: string;
  parameters: PortraitParameters;
  reference: ReferenceUpload;
  jobId?: string;
  webhook?: WebhookSpec;
};

/** POST /jobs: create the job, then start its orchestrator. */
export async function submitPortraitJob(deps: SubmissionDeps, request: PortraitRequest): Promise<{ jobId: string }> {
  const state = await createPortraitJob(deps, request);
  await enqueuePortraitJob(deps, state);
  logger.info('portrait job submitted', { jobId: state.jobId });
  return { jobId: state.jobId };
}

/** Reference image into S3, then the Job document (pending); returns the orchestrator's initial state. */
export async function createPortraitJob(deps: SubmissionDeps, request: PortraitRequest): Promise<PortraitState> {
  const { tenant, parameters, reference, webhook } = request;
  const jobId = request.jobId ?? new Types.ObjectId().toHexString();
  const referenceImageKey = `jobs/${jobId}/reference.${EXTENSIONS[reference.contentType] ?? 'bin'}`;
  await deps.objects.put(referenceImageKey, reference.data, reference.contentType);
  await JobModel.create({
    _id: jobId,
    tenant,
    status: 'pending',
    webhook,
    parameters,
    reference: {
      key: referenceImageKey,
      contentType: reference.contentType,
      width: reference.width,
      height: reference.height,
      bytes: reference.data.length,
    },
  });
  return PortraitState.parse({ jobId, tenant, webhook, parameters, referenceImageKey, maxAttempts: deps.config.MAX_ATTEMPTS });
}

/**
 * Adds the orchestrator job. Its BullMQ id is derived from the Mongo id, so a repeated enqueue is a
 * no-op; if the enqueue fails the document is marked failed rather than left pending forever.
 */
export async function enqueuePortraitJob(deps: SubmissionDeps, state: PortraitState): Promise<void> {
  const { jobId } = state;
  try {
    await deps.portraitQueue.add('portrait', state, {
      jobId: portraitJobId(jobId),
      // Retries cover the orchestrator's own infrastructure errors (a MongoDB or Redis blip).
      attempts: 8,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: { age: deps.config.STEP_RETENTION_S },
      removeOnFail: { age: deps.config.STEP_RETENTION_S },
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.error('could not enqueue portrait job', { jobId, error: message });
    await markJobFailed(jobId, 'could not enqueue the job');
    throw err;
  }
}
