import type { Queue } from 'bullmq';
import { randomInt } from 'node:crypto';
import type { Config } from '../../config';
import { logger } from '../../logger';
import { IdentityModel, type IdentityDocument } from '../../store/identityModel';
import { markUnfinishedFailed } from '../../store/mongo';
import type { ObjectStore } from '../../store/objectStore';
import type { StoredPhoto } from '../../store/storedPhotoSchema';
import { currentTraceCarrier } from '../../telemetry';
import type { IdentityJobData, IdentityTrainingOptions } from '../contracts/identity';
import { identityJobId } from '../ids';
import { orchestratorJobOptions } from '../queues';
import type { WebhookSpec } from '../webhooks/events';
import { photoExtension, type ReferenceUpload } from '../portrait/referenceImage';
import { identityKeys } from './stages';


/** A checkpoint every this many steps: at most this much training is repeated after a worker dies. */
const CHECKPOINT_EVERY = 100;

/**
 * The word for the person in captions and instructions: one per identity (from its id), so two
 * identities' LoRAs never answer to the same word; letters a tokenizer has no meaning for.
 */
export const triggerTokenFor = (identityId: string) => `zq${identityId.slice(-8)}`;

/** The photos as sent, under the identity's prefix (erasure deletes them with it), in upload order. */
export async function storeIdentityPhotos(objects: ObjectStore, identityId: string, photos: ReferenceUpload[]): Promise<StoredPhoto[]> {
  const prefix = identityKeys(identityId).photosPrefix;
  const stored = photos.map((p, index) => ({ key: `${prefix}/${index}.${photoExtension(p.contentType)}`, contentType: p.contentType, width: p.width, height: p.height, bytes: p.data.length }));
  await Promise.all(photos.map((p, index) => objects.put(stored[index].key, p.data, p.contentType)));
  return stored;
}

/**
 * POST /identities, once its photos are stored and passed the face check: the Identity document
 * (pending), then its workflow's job (identityJobId: added once however often this runs).
 */
export async function submitIdentity(
  deps: { config: Config; queue: Queue<IdentityJobData> },
  request: { identityId: string; tenant: string; name: string; photos: StoredPhoto[]; training: IdentityTrainingOptions; webhook?: WebhookSpec },
): Promise<IdentityDocument> {
  const { identityId, tenant, name, photos, training, webhook } = request;
  const recipe = {
    steps: training.steps,
    rank: training.rank,
    learningRate: training.learning_rate,
    resolution: training.resolution,
    seed: randomInt(0, 2 ** 32 - 1),
    checkpointEvery: Math.min(CHECKPOINT_EVERY, training.steps),
  };
  const triggerToken = triggerTokenFor(identityId);
  const created = (await IdentityModel.create({ _id: identityId, tenant, name, status: 'pending', triggerToken, training: recipe, photos, webhook })).toObject() as IdentityDocument;
  const data: IdentityJobData = { identityId, tenant, webhook, trace: currentTraceCarrier(), stage: 0, queued: false, recipe, triggerToken, photoKeys: photos.map((p) => p.key) };
  try {
    await deps.queue.add('identity', data, orchestratorJobOptions(identityJobId(identityId), deps.config.STEP_RETENTION_S));
  } catch (err) {
    logger.error('could not enqueue identity', { identityId, error: err instanceof Error ? err.message : String(err) });
    await markUnfinishedFailed(IdentityModel, identityId, 'could not start learning the identity');
    throw err;
  }
  return created;
}
