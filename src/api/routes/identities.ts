import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import type { Redis } from 'ioredis';
import { Types } from 'mongoose';
import multer, { MulterError } from 'multer';
import { z } from 'zod';
import type { Config } from '../../config';
import { requestCancel } from '../../flows/cancellation';
import type { EvaluateIdentityStepResult } from '../../flows/contracts/evaluateIdentityStep';
import { IDENTITY_PHOTOS, IdentityTrainingOptions } from '../../flows/contracts/identity';
import { eraseResources } from '../../flows/erasure/resourceErasure';
import { identityCost } from '../../flows/fairness/gpuCost';
import { identityObjectsPrefix } from '../../flows/ids';
import { checkIdentityPhotos, PhotoCheckUnavailable } from '../../flows/identity/photoCheck';
import { storeIdentityPhotos, submitIdentity } from '../../flows/identity/submission';
import { trainingProgress } from '../../flows/identity/trainingProgress';
import type { ReferenceUpload } from '../../flows/portrait/referenceImage';
import { QueueName, type QueueSet } from '../../flows/queues';
import { DEFAULT_IDENTITY_EVENTS } from '../../flows/webhooks/events';
import { IdentityModel, type IdentityDocument } from '../../store/identityModel';
import type { ObjectStore } from '../../store/objectStore';
import { IDENTITY_STATUSES, TERMINAL_STATUSES } from '../../store/statuses';
import { callerOf } from '../auth';
import { ApiError } from '../errors';
import { chargeGpuUnits } from '../gpuCharge';
import { claimRequest } from '../idempotencyKey';
import { findIdentity, newestFirstPage, PAGE_QUERY } from '../tenantResources';
import { streamImage } from '../streamObject';
import { checkedPhotos, uploadFingerprint } from '../uploadedPhotos';
import { configuredUploadGate } from '../uploadGate';
import { parseOr400 } from '../validation';
import { checkWebhook } from '../webhookInput';
import { identityView } from '../views/identity';

const { min: MIN_PHOTOS, max: MAX_PHOTOS } = IDENTITY_PHOTOS;
const FIELDS = ['name', 'training', 'webhook_url', 'webhook_events'];
const EXPECTED_FORM = `send multipart/form-data with ${MIN_PHOTOS} to ${MAX_PHOTOS} photos of the same person, each as a photos part, a name, and optional fields training (JSON), webhook_url, webhook_events`;

export const IdentityListQuery = z.strictObject({ status: z.enum(IDENTITY_STATUSES).optional(), ...PAGE_QUERY });
const IdentityName = z.strictObject({ name: z.string().trim().min(1, 'name is required: a label for the person, 1 to 100 characters').max(100) });

/** How many photos parts multer has begun to receive: the one a size limit stops is the last. */
const filesSeen = new WeakMap<Request, number>();

function uploadError(err: MulterError, maxBytes: number, seen: number, fileField: string): ApiError {
  switch (err.code) {
    case 'LIMIT_FILE_SIZE':
      return new ApiError(413, 'file_too_large', `${fileField}[${seen - 1}] is larger than ${maxBytes} bytes; send a smaller photo`, fileField, { index: seen - 1 });
    case 'LIMIT_FILE_COUNT':
    case 'LIMIT_UNEXPECTED_FILE':
      return err.field === fileField || err.code === 'LIMIT_FILE_COUNT'
        ? new ApiError(400, 'too_many_files', `${fileField}: at most ${MAX_PHOTOS} photos`, fileField, { index: MAX_PHOTOS })
        : new ApiError(400, 'unexpected_field', `unexpected file field "${err.field}": send each photo as ${fileField}`, err.field);
    case 'LIMIT_FIELD_VALUE':
      return new ApiError(413, 'field_too_large', `form field "${err.field}" is too long (at most 16 KiB)`, err.field);
    default:
      return new ApiError(400, 'bad_upload', `${err.message}: ${EXPECTED_FORM}`, err.field);
  }
}

/** A multipart body parsed into memory with multer, its errors answered as 4xx naming the field. */
function multipart(config: Config, fileField: string, maxFiles: number, fields: number): RequestHandler {
  const upload = multer({
    storage: multer.memoryStorage(),
    defParamCharset: 'utf8',
    limits: { fileSize: config.MAX_UPLOAD_BYTES, files: maxFiles, fields, fieldSize: 16 * 1024, parts: fields + maxFiles + 1 },
    fileFilter: (req, _file, accept) => {
      filesSeen.set(req, (filesSeen.get(req) ?? 0) + 1);
      accept(null, true);
    },
  }).array(fileField, maxFiles);
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) return next(new ApiError(415, 'multipart_required', EXPECTED_FORM, fileField));
    upload(req, res, (err: unknown) => {
      if (!err) return next();
      next(err instanceof MulterError ? uploadError(err, config.MAX_UPLOAD_BYTES, filesSeen.get(req) ?? 0, fileField) : new ApiError(400, 'malformed_multipart', `malformed multipart body: ${(err as Error).message}; ${EXPECTED_FORM}`));
    });
  };
}

/** A form field sent at most once (a repeated one arrives as an array: refused, naming it). */
function single(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string') throw new ApiError(400, 'duplicate_field', `${field} must be sent once`, field);
  return value;
}

function parseTraining(raw: string | undefined) {
  let json: unknown = {};
  if (raw !== undefined) {
    try {
      json = JSON.parse(raw);
    } catch {
      throw new ApiError(400, 'invalid_json', 'training is not valid JSON; send an object like {"steps":1000,"rank":16}', 'training');
    }
  }
  const parsed = IdentityTrainingOptions.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.join('.');
    const field = key ? `training.${key}` : 'training';
    throw new ApiError(400, 'invalid_training', issue.code === 'unrecognized_keys' ? `unknown training option "${key}"; the options are steps, rank, learning_rate, resolution` : `${field}: ${issue.message}`, field);
  }
  return parsed.data;
}

type Deps = { config: Config; redis: Redis; objects: ObjectStore; queues: QueueSet };

/**
 * Stores the photos under a new identity's prefix and waits for their face check (the step on the
 * vlm pool); a refused photo, or no answer in time, deletes them again, so nothing is kept.
 */
async function storeCheckedPhotos(deps: Deps, identityId: string, photos: ReferenceUpload[], field: string) {
  const stored = await storeIdentityPhotos(deps.objects, identityId, photos);
  try {
    const checks = await checkIdentityPhotos(deps, identityId, stored.map((p) => p.key));
    const refused = checks.findIndex((c) => !c.accepted);
    if (refused >= 0) {
      const reason = checks[refused].reason ?? 'refused';
      throw new ApiError(422, 'photo_refused', `${field}[${refused}] cannot be used to learn the person: ${reason}; send a photo with exactly one clearly visible face`, field, { index: refused, reason });
    }
    return { stored, checks };
  } catch (err) {
    await deps.objects.deletePrefix(identityObjectsPrefix(identityId));
    if (err instanceof PhotoCheckUnavailable) throw new ApiError(503, 'face_check_unavailable', 'the photos could not be checked for faces right now; nothing was kept, retry in a minute', undefined, { retry_after_s: 30 });
    throw err;
  }
}

/**
 * Identities (issue 21): a person learnt from 4 to 20 photos. POST checks every photo (decoded, one
 * adequate face) before anything is kept, then the identity workflow prepares, captions, trains and
 * evaluates; GET shows where it stands (live training progress), cancel stops it between training
 * steps, DELETE erases every trace of it. POST /identities/photo-check is the same face check for one
 * photo, kept nowhere: the studio shows it before the upload.
 */
export function identitiesRouter(deps: Deps): Router {
  const router = Router();
  const gate = configuredUploadGate(deps.config);
  const identityUpload = multipart(deps.config, 'photos', MAX_PHOTOS, FIELDS.length);
  const photoUpload = multipart(deps.config, 'photo', 1, 0);

  /** A body declared bigger than all the photos may be together is refused before it is read (each photo still has its own limit). */
  const declaredSize: RequestHandler = (req, res, next) => {
    const declared = Number(req.get('content-length') ?? 0);
    if (declared <= deps.config.IDENTITY_UPLOAD_MAX_BYTES) return next();
    res.setHeader('Connection', 'close'); // the body it is still sending is not read
    next(new ApiError(413, 'upload_too_large', `the photos together are ${declared} bytes; send at most ${deps.config.IDENTITY_UPLOAD_MAX_BYTES} bytes in one request (smaller photos, or fewer)`, 'photos'));
  };

  router.post('/identities', declaredSize, gate, identityUpload, async (req: Request, res: Response, next: NextFunction) => {
    try {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const unknown = Object.keys(body).find((k) => !FIELDS.includes(k));
      if (unknown) throw new ApiError(400, 'unknown_field', `unknown form field "${unknown}"; the fields are photos, ${FIELDS.join(', ')}`, unknown);
      const { name } = parseOr400(IdentityName, { name: single(body, 'name') ?? '' }, 'invalid_name');
      const training = parseTraining(single(body, 'training'));
      const events = single(body, 'webhook_events')?.split(',').map((e) => e.trim());
      const webhook = await checkWebhook(deps.config, { url: single(body, 'webhook_url'), events }, DEFAULT_IDENTITY_EVENTS, { url: 'webhook_url', events: 'webhook_events' });
      const files = (req.files ?? []) as Express.Multer.File[];
      if (files.length < MIN_PHOTOS) {
        throw new ApiError(400, 'too_few_files', `photos: ${files.length} sent, at least ${MIN_PHOTOS} are needed (${MIN_PHOTOS} to ${MAX_PHOTOS} photos of the same person, each as a photos part)`, 'photos', { count: files.length });
      }
      const photos = await checkedPhotos(files, deps.config, 'photos', (index) => `photos[${index}]`);
      const { tenant } = callerOf(res);
      const identityId = new Types.ObjectId().toHexString();
      const claim = await claimRequest(req, tenant, () => uploadFingerprint({ name, training, webhook: webhook ?? null }, files.map((f) => f.buffer)), identityId);
      if (claim.replayOf) {
        const existing = await IdentityModel.findById(claim.replayOf).lean<IdentityDocument>();
        res.setHeader('Idempotent-Replayed', 'true');
        return res.status(200).location(`/identities/${claim.replayOf}`).json({ identity_id: claim.replayOf, status: existing?.status ?? 'pending', message: 'Identity already created for this Idempotency-Key' });
      }
      try {
        // Charged before the photos are checked (a refused request is refunded): the face check is GPU work too.
        const charge = await chargeGpuUnits(deps, res, tenant, identityCost(training), 'training');
        try {
          const { stored } = await storeCheckedPhotos(deps, identityId, photos, 'photos');
          await submitIdentity({ config: deps.config, queue: deps.queues.get(QueueName.identity) }, { identityId, tenant, name, photos: stored, training, webhook });
        } catch (err) {
          await charge.refund();
          throw err;
        }
      } catch (err) {
        await claim.release();
        throw err;
      }
      res.status(202).location(`/identities/${identityId}`).json({ identity_id: identityId, status: 'pending', message: 'every photo shows one face; learning the person started' });
    } catch (err) {
      if (err instanceof ApiError && err.status === 503 && err.details?.retry_after_s) res.setHeader('Retry-After', String(err.details.retry_after_s));
      next(err);
    }
  });

  router.post('/identities/photo-check', gate, photoUpload, async (req: Request, res: Response, next: NextFunction) => {
    try {
      const files = (req.files ?? []) as Express.Multer.File[];
      if (files.length !== 1) throw new ApiError(400, 'missing_file', 'photo is required: send one photo (JPEG, PNG or WebP) as a photo part', 'photo');
      const [photo] = await checkedPhotos(files, deps.config, 'photo', () => 'photo');
      // Checked under a prefix of its own, deleted whatever the answer: a check keeps nothing.
      const checkId = new Types.ObjectId().toHexString();
      const [stored] = await storeIdentityPhotos(deps.objects, checkId, [photo]);
      let check;
      try {
        [check] = await checkIdentityPhotos(deps, checkId, [stored.key]);
      } catch (err) {
        if (!(err instanceof PhotoCheckUnavailable)) throw err;
        res.setHeader('Retry-After', '30');
        throw new ApiError(503, 'face_check_unavailable', 'the photo could not be checked for faces right now; retry in a minute');
      } finally {
        // Before the answer: once the caller has it, nothing of the photo is left.
        await deps.objects.deletePrefix(identityObjectsPrefix(checkId));
      }
      res.json({ accepted: check.accepted, reason: check.reason ?? null, face_box: check.faceBox ?? null });
    } catch (err) {
      next(err);
    }
  });

  router.get('/identities', async (req, res) => {
    const query = parseOr400(IdentityListQuery, req.query, 'invalid_query');
    const { page, next_cursor } = await newestFirstPage<IdentityDocument>(IdentityModel, { tenant: callerOf(res).tenant, ...(query.status ? { status: query.status } : {}) }, query);
    res.json({ identities: page.map((d) => identityView(d)), next_cursor });
  });

  router.get('/identities/:id', async (req, res) => {
    const identity = await findIdentity(req, res);
    const progress = identity.status === 'training' ? await trainingProgress(deps.redis, deps.config.QUEUE_PREFIX, deps.queues, identity._id.toHexString()) : null;
    res.json(identityView(identity, progress));
  });

  /** Each photo as it was sent (upright, metadata stripped), and each evaluation render: the caller's own to look at. */
  const imageAt = (keys: (identity: IdentityDocument) => string[], what: string) => async (req: Request, res: Response) => {
    const identity = await findIdentity(req, res);
    const index = Number(req.params.index);
    if (!Number.isInteger(index) || index < 0) throw new ApiError(400, 'invalid_index', `index must be a whole number from 0, like /identities/{id}/${what}/0/image`, 'index');
    const key = keys(identity)[index];
    if (!key) throw new ApiError(404, 'image_missing', `identity has no ${what} ${index}`, 'index');
    await streamImage(deps.objects, res, key);
  };
  router.get('/identities/:id/photos/:index/image', imageAt((identity) => identity.photos.map((p) => p.key), 'photos'));
  router.get('/identities/:id/evaluation/:index/image', imageAt((identity) => (identity.evaluation as EvaluateIdentityStepResult | undefined)?.renders.map((r) => r.key) ?? [], 'evaluation'));

  /** Stops the identity wherever it is: a queued step never starts, training stops between two steps. */
  router.post('/identities/:id/cancel', async (req, res) => {
    const identity = await findIdentity(req, res);
    if (TERMINAL_STATUSES.has(identity.status)) {
      throw new ApiError(409, 'not_cancellable', `identity is already ${identity.status}`, undefined, { status: identity.status });
    }
    await requestCancel(deps.redis, deps.config.QUEUE_PREFIX, identity._id.toHexString());
    res.status(202).json({ identity_id: identity._id.toHexString(), status: 'cancelling', message: 'the identity ends cancelled once its current step has stopped' });
  });

  /**
   * Erases the identity and everything learnt from the person (photos, framed crops, captions,
   * embeddings, checkpoints, the LoRA, the evaluation), cancelling a running training first.
   * Portraits already made stay with their jobs. Afterwards it answers 404, like an id never used.
   */
  router.delete('/identities/:id', async (req, res) => {
    const identity = await findIdentity(req, res);
    await eraseResources(deps, [{ kind: 'identity', id: identity._id.toHexString(), tenant: identity.tenant }], 'request');
    res.status(204).end();
  });

  return router;
}
