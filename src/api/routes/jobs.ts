import { Router, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import { Types } from 'mongoose';
import multer, { MulterError } from 'multer';
import { z } from 'zod';
import { requestCancel } from '../../flows/cancellation';
import { IdentityId, MAX_REFERENCE_PHOTOS } from '../../flows/contracts/common';
import { identityReferenceOf } from '../../flows/identity/portraitReference';
import { IdentityModel, type IdentityDocument } from '../../store/identityModel';
import { LoraSpec } from '../../flows/contracts/generateStep';
import { PortraitParameters, PORTRAIT_VOCABULARY, RESOLUTIONS } from '../../flows/contracts/portraitParameters';
import type { AttemptRecord } from '../../flows/contracts/portraitState';
import type { ReportStepResult } from '../../flows/contracts/reportStep';
import { withLiveProgress } from '../../flows/portrait/liveProgress';
import { chosenImage } from '../../flows/portrait/stateMachine';
import { portraitCost } from '../../flows/fairness/gpuCost';
import { retryPortraitJob, submitPortraitJob, type IdentityReference, type SubmissionDeps } from '../../flows/portrait/submission';
import { eraseResources } from '../../flows/erasure/resourceErasure';
import type { QueueSet } from '../../flows/queues';
import { DEFAULT_WEBHOOK_EVENTS } from '../../flows/webhooks/events';
import { JobModel, type JobDocument } from '../../store/jobModel';
import { JOB_STATUSES, RETRYABLE_STATUSES, TERMINAL_STATUSES } from '../../store/statuses';
import { callerOf } from '../auth';
import { ApiError } from '../errors';
import { claimRequest } from '../idempotencyKey';
import { jobReportView, jobView } from '../views/job';
import { findJob, newestFirstPage, PAGE_QUERY } from '../tenantResources';
import { chargeGpuUnits } from '../gpuCharge';
import { streamImage } from '../streamObject';
import { checkedPhotos, uploadFingerprint } from '../uploadedPhotos';
import { configuredUploadGate } from '../uploadGate';
import { issueField, parseOr400 } from '../validation';
import { checkWebhook } from '../webhookInput';

const ALLOWED_FIELDS = ['parameters', 'candidates', 'webhook_url', 'webhook_events', 'loras', 'hf_token', 'identity_id'];
const EXPECTED_FORM = `send multipart/form-data with 1 to ${MAX_REFERENCE_PHOTOS} photos of the person, each as an image_file part (or identity_id: a ready identity of yours), and optional fields parameters (JSON), candidates, webhook_url, webhook_events, loras (JSON), hf_token`;
const TOO_MANY_PHOTOS = `send 1 to ${MAX_REFERENCE_PHOTOS} photos, each as an image_file part`;

/** How many image_file parts multer has begun to receive: the one a size limit stops is the last. */
const filesSeen = new WeakMap<Request, number>();

/** multer's limit errors, each saying what the caller should send instead (and which photo, by index from 0). */
function uploadError(err: MulterError, maxBytes: number, seen: number): ApiError {
  const field = err.field;
  switch (err.code) {
    case 'LIMIT_FILE_SIZE':
      return new ApiError(413, 'file_too_large', `image_file[${seen - 1}] is larger than ${maxBytes} bytes; send a smaller photo`, field, { index: seen - 1 });
    case 'LIMIT_FILE_COUNT':
      return new ApiError(400, 'too_many_files', `image_file[${MAX_REFERENCE_PHOTOS}] is one photo too many: ${TOO_MANY_PHOTOS}`, 'image_file', { index: MAX_REFERENCE_PHOTOS });
    case 'LIMIT_UNEXPECTED_FILE':
      return field === 'image_file'
        ? new ApiError(400, 'too_many_files', `image_file[${MAX_REFERENCE_PHOTOS}] is one photo too many: ${TOO_MANY_PHOTOS}`, field, { index: MAX_REFERENCE_PHOTOS })
        : new ApiError(400, 'unexpected_field', `unexpected file field "${field}": send the photo as image_file`, field);
    case 'LIMIT_FIELD_COUNT':
      return new ApiError(400, 'too_many_fields', `too many form fields: ${EXPECTED_FORM}`, field);
    case 'LIMIT_PART_COUNT':
      return new ApiError(400, 'too_many_parts', `too many parts: ${EXPECTED_FORM}`, field);
    case 'LIMIT_FIELD_VALUE':
      return new ApiError(413, 'field_too_large', `form field "${field}" is too long (at most 16 KiB)`, field);
    default:
      return new ApiError(400, 'bad_upload', `${err.message}: ${EXPECTED_FORM}`, field);
  }
}

function parseParameters(raw: unknown) {
  let json: unknown = {};
  if (raw !== undefined && raw !== '') {
    if (typeof raw !== 'string') throw new ApiError(400, 'invalid_parameters', 'parameters must be a single JSON object such as {"purpose":"corporate_headshot"}, sent once', 'parameters');
    try {
      json = JSON.parse(raw);
    } catch {
      throw new ApiError(400, 'invalid_json', 'parameters is not valid JSON; send a JSON object such as {"purpose":"corporate_headshot"}', 'parameters');
    }
  }
  const parsed = PortraitParameters.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issueField(issue);
    const field = key ? `parameters.${key}` : 'parameters';
    const message = issue.code === 'unrecognized_keys' ? `unknown parameter "${key}"` : `${field}: ${issue.message}`;
    throw new ApiError(400, 'invalid_parameters', message, field);
  }
  return parsed.data;
}


export const JobListQuery = z.strictObject({ status: z.enum(JOB_STATUSES).optional(), ...PAGE_QUERY });

const PortraitLoras = z.strictObject({ loras: z.array(LoraSpec).max(8) });
const Candidates = z.strictObject({ candidates: z.coerce.number().int().min(1).max(4).default(1) });

/** Identity LoRAs: a JSON array with the same rules and field names as POST /generations' `loras`. */
function parseLoras(raw: unknown) {
  if (raw === undefined || raw === '') return [];
  if (typeof raw !== 'string') throw new ApiError(400, 'invalid_loras', 'loras must be sent once, as a JSON array like [{"repo":"owner/name","scale":1}]', 'loras');
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ApiError(400, 'invalid_json', 'loras is not valid JSON; send an array like [{"repo":"owner/name","scale":1}]', 'loras');
  }
  return parseOr400(PortraitLoras, { loras: json }, 'invalid_loras').loras;
}

/** A private LoRA repo's token: sealed like a generation's secrets, so it needs SECRETS_KEY. */
function parseHfToken(raw: unknown, config: SubmissionDeps['config']): { hf_token: string } | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || raw.length > 512) throw new ApiError(400, 'invalid_hf_token', 'hf_token must be one token of at most 512 characters, sent once', 'hf_token');
  if (!config.SECRETS_KEY) throw new ApiError(400, 'secrets_disabled', 'this deployment has no SECRETS_KEY, so it accepts no per-request secrets', 'hf_token');
  return { hf_token: raw };
}

/** The caller's identity named by `identity_id`, ready for portraits; otherwise a 4xx naming identity_id. */
async function readyIdentity(raw: unknown, tenant: string): Promise<IdentityReference> {
  if (typeof raw !== 'string' || !IdentityId.safeParse(raw).success) throw new ApiError(400, 'invalid_identity_id', 'identity_id must be one 24-character hex identity id, sent once', 'identity_id');
  const identity = await IdentityModel.findById(raw).lean<IdentityDocument>();
  if (!identity || identity.tenant !== tenant) throw new ApiError(404, 'identity_not_found', `no identity with id ${raw}`, 'identity_id');
  const reference = identityReferenceOf(identity);
  if (!reference) throw new ApiError(409, 'identity_not_ready', `identity ${raw} is ${identity.status}; portraits need a ready identity`, 'identity_id', { status: identity.status });
  return reference;
}

function notReady(job: JobDocument, what: string): ApiError {
  return new ApiError(409, 'not_ready', `job is ${job.status}; ${what}`, undefined, { status: job.status });
}

export function jobsRouter(deps: SubmissionDeps & { redis: Redis; queues: QueueSet }): Router {
  const router = Router();
  const upload = multer({
    storage: multer.memoryStorage(),
    defParamCharset: 'utf8', // field and file names as sent, not as latin1
    limits: { fileSize: deps.config.MAX_UPLOAD_BYTES, files: MAX_REFERENCE_PHOTOS, fields: 6, fieldSize: 16 * 1024, parts: 7 + MAX_REFERENCE_PHOTOS },
    fileFilter: (req, _file, accept) => {
      filesSeen.set(req, (filesSeen.get(req) ?? 0) + 1);
      accept(null, true);
    },
  }).array('image_file', MAX_REFERENCE_PHOTOS);

  router.get('/parameters', (_req, res) => {
    res.json({ ...PORTRAIT_VOCABULARY, resolution: RESOLUTIONS, defaults: PortraitParameters.parse({}) });
  });

  const gate = configuredUploadGate(deps.config);

  router.post('/jobs', (req, res, next) => {
    if (!req.is('multipart/form-data')) {
      return next(new ApiError(415, 'multipart_required', EXPECTED_FORM, 'image_file'));
    }
    next();
  }, gate, (req, res, next) => {
    upload(req, res, async (err) => {
      try {
        // Anything the multipart parser itself rejects (busboy: malformed headers, bad boundaries)
        // is the client's malformed body; multer's own limit errors keep their codes.
        if (err) throw err instanceof MulterError ? uploadError(err, deps.config.MAX_UPLOAD_BYTES, filesSeen.get(req) ?? 0) : new ApiError(400, 'malformed_multipart', `malformed multipart body: ${err.message}; ${EXPECTED_FORM}`);
        const unknown = Object.keys(req.body ?? {}).find((k) => !ALLOWED_FIELDS.includes(k));
        if (unknown) throw new ApiError(400, 'unknown_field', `unknown form field "${unknown}"; the fields are image_file, ${ALLOWED_FIELDS.join(', ')}`, unknown);
        const parameters = parseParameters(req.body?.parameters);
        const loras = parseLoras(req.body?.loras);
        const { candidates } = parseOr400(Candidates, { candidates: req.body?.candidates || undefined }, 'invalid_candidates');
        const secrets = parseHfToken(req.body?.hf_token, deps.config);
        const files = (req.files ?? []) as Express.Multer.File[];
        const identityId = req.body?.identity_id === undefined || req.body.identity_id === '' ? undefined : req.body.identity_id;
        if (identityId !== undefined && files.length > 0) throw new ApiError(400, 'ambiguous_person', 'send either image_file photos or identity_id, not both', 'identity_id');
        if (files.length === 0 && identityId === undefined) throw new ApiError(400, 'missing_file', 'image_file is required: send the photo (JPEG, PNG or WebP) as image_file, or identity_id', 'image_file');
        const events = typeof req.body?.webhook_events === 'string' ? req.body.webhook_events.split(',').map((e: string) => e.trim()) : undefined;
        const webhook = await checkWebhook(deps.config, { url: req.body?.webhook_url, events }, DEFAULT_WEBHOOK_EVENTS, { url: 'webhook_url', events: 'webhook_events' });
        const { tenant } = callerOf(res);
        const identity = identityId === undefined ? undefined : await readyIdentity(identityId, tenant);
        const references = identity ? [] : await checkedPhotos(files, deps.config, 'image_file', (index) => (files.length > 1 ? `image_file[${index}]` : 'image_file'));
        const jobId = new Types.ObjectId().toHexString();
        const fingerprint = () => uploadFingerprint({ parameters, candidates, webhook: webhook ?? null, loras, secrets: secrets ? ['hf_token'] : [], identityId: identityId ?? null }, files.map((f) => f.buffer));
        const claim = await claimRequest(req, tenant, fingerprint, jobId);
        if (claim.replayOf) {
          const job = await JobModel.findById(claim.replayOf).lean<JobDocument>();
          res.setHeader('Idempotent-Replayed', 'true');
          return res.status(200).location(`/jobs/${claim.replayOf}`).json({ job_id: claim.replayOf, status: job?.status ?? 'pending', message: 'Job already created for this Idempotency-Key' });
        }
        try {
          const charge = await chargeGpuUnits(deps, res, tenant, portraitCost({ parameters, candidates: candidates ?? 1 }, deps.config.MAX_ATTEMPTS));
          await submitPortraitJob(deps, { tenant, parameters, candidates, references, identity, jobId, webhook, loras, secrets }).catch(async (e: unknown) => {
            await charge.refund();
            throw e;
          });
        } catch (e) {
          await claim.release();
          throw e;
        }
        res.status(202).location(`/jobs/${jobId}`).json({ job_id: jobId, status: 'pending', message: 'Job created and processing started' });
      } catch (e) {
        next(e);
      }
    });
  });

  router.get('/jobs', async (req, res) => {
    const query = parseOr400(JobListQuery, req.query, 'invalid_query');
    const { page, next_cursor } = await newestFirstPage<JobDocument>(JobModel, { tenant: callerOf(res).tenant, ...(query.status ? { status: query.status } : {}) }, query);
    res.json({ jobs: page.map((d) => jobView(d)), next_cursor });
  });

  /** The job as its orchestrator has it now: the document may trail a running job (liveProgress.ts). */
  const findLiveJob = async (req: Request, res: Response) => withLiveProgress(await findJob(req, res), deps.portraitQueue);

  router.get('/jobs/:id', async (req, res) => {
    res.json(jobView(await findLiveJob(req, res)));
  });

  /** A failed job gets a new cycle of attempts; the old attempts and how the cycle ended are kept. */
  router.post('/jobs/:id/retry', async (req, res) => {
    const job = await findJob(req, res);
    if (job.inputsErasedAt) {
      throw new ApiError(409, 'not_retryable', 'the reference photo was erased when its retention period ended; submit the photo again as a new job', undefined, { status: job.status });
    }
    // A portrait of an identity renders with the identity as it is now: it must still be there, and ready.
    const identity = job.identityId ? await IdentityModel.findOne({ _id: job.identityId, tenant: job.tenant }).lean<IdentityDocument>() : undefined;
    const reference = identity ? identityReferenceOf(identity) : undefined;
    if (job.identityId && !reference) {
      throw new ApiError(409, 'not_retryable', `identity ${job.identityId} was deleted or is not ready; start a new job`, undefined, { status: job.status });
    }
    const notRetryable = () => new ApiError(409, 'not_retryable', `only failed jobs can be retried; this one is ${job.status}`, undefined, { status: job.status });
    if (!RETRYABLE_STATUSES.includes(job.status)) throw notRetryable();
    // A new cycle renders again: it costs what the job cost when it was created.
    const charge = await chargeGpuUnits(deps, res, job.tenant, portraitCost({ parameters: job.parameters, candidates: job.candidates ?? 1 }, deps.config.MAX_ATTEMPTS));
    const retried = await retryPortraitJob(deps, job, reference).catch(async (e: unknown) => {
      await charge.refund();
      throw e;
    });
    if (!retried) {
      await charge.refund();
      throw notRetryable();
    }
    res.status(202).location(`/jobs/${job._id.toHexString()}`).json({ job_id: job._id.toHexString(), status: 'pending', message: 'a new attempt cycle started' });
  });

  /** Stops a job wherever it is: a queued job never starts, a running step is aborted by its worker. */
  router.post('/jobs/:id/cancel', async (req, res) => {
    const job = await findJob(req, res);
    if (TERMINAL_STATUSES.has(job.status)) {
      throw new ApiError(409, 'not_cancellable', `job is already ${job.status}`, undefined, { status: job.status });
    }
    await requestCancel(deps.redis, deps.config.QUEUE_PREFIX, job._id.toHexString());
    res.status(202).json({ job_id: job._id.toHexString(), status: 'cancelling', message: 'the job ends cancelled once its current step has stopped' });
  });

  /**
   * Erases the job and everything it left (erasure/resourceErasure.ts), cancelling it first when it
   * runs. Afterwards it answers 404, not 410: nothing of it is kept, not even a record that it
   * existed, so it cannot be told from an id that never was (nor from another tenant's).
   */
  router.delete('/jobs/:id', async (req, res) => {
    const job = await findJob(req, res);
    await eraseResources(deps, [{ kind: 'job', id: job._id.toHexString(), tenant: job.tenant }], 'request');
    res.status(204).end();
  });

  router.get('/jobs/:id/result', async (req, res) => {
    const job = await findJob(req, res);
    const result = job.result as { imageKey: string } | null;
    if (job.status !== 'completed' || !result) throw notReady(job, 'the result exists once it is completed');
    await streamImage(deps.objects, res, result.imageKey);
  });

  /** Every attempt's image stays available, so a failed_validation job still returns its images. */
  router.get('/jobs/:id/attempts/:attempt/image', async (req, res) => {
    const job = await findLiveJob(req, res);
    const number = Number(req.params.attempt);
    const attempt = (job.attempts as AttemptRecord[]).find((a) => a.number === number);
    if (!Number.isInteger(number) || number < 1) {
      throw new ApiError(400, 'invalid_attempt', 'attempt must be a positive integer, like /attempts/1/image', 'attempt');
    }
    if (!attempt) throw new ApiError(404, 'attempt_not_found', `job has no attempt ${number}`, 'attempt');
    if (attempt.images.length === 0) throw notReady(job, `attempt ${number} has no image yet`);
    await streamImage(deps.objects, res, chosenImage(attempt).key);
  });

  router.get('/jobs/:id/report', async (req, res) => {
    const job = await findJob(req, res);
    const report = job.report as { result?: ReportStepResult } | null;
    if (job.status !== 'failed_validation' || !report?.result) {
      throw notReady(job, 'a report exists only when every attempt failed validation');
    }
    res.json(jobReportView(job, report.result));
  });

  return router;
}
