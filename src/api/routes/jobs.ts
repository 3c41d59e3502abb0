import { Router, type Request, type Response } from 'express';
import multer from 'multer';
import { pipeline } from 'node:stream/promises';
import { JobId } from '../../flows/contracts/common';
import type { AttemptRecord } from '../../flows/contracts/portraitState';
import { PortraitParameters, PORTRAIT_VOCABULARY, RESOLUTIONS } from '../../flows/contracts/portraitParameters';
import { submitPortraitJob, type SubmissionDeps } from '../../flows/portraitSubmission';
import { JobModel, type JobDocument } from '../../store/jobModel';
import { ApiError } from '../errors';
import { jobView } from '../jobView';
import { normalizeReferenceImage } from '../referenceImage';

const ALLOWED_FIELDS = new Set(['parameters']);

function parseParameters(raw: unknown) {
  let json: unknown = {};
  if (raw !== undefined && raw !== '') {
    if (typeof raw !== 'string') throw new ApiError(400, 'invalid_parameters', 'parameters must be a single JSON object', 'parameters');
    try {
      json = JSON.parse(raw);
    } catch {
      throw new ApiError(400, 'invalid_json', 'parameters is not valid JSON', 'parameters');
    }
  }
  const parsed = PortraitParameters.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.join('.');
    const field = key ? `parameters.${key}` : 'parameters';
    const message = issue.code === 'unrecognized_keys' ? `unknown parameter "${key}"` : `${field}: ${issue.message}`;
    throw new ApiError(400, 'invalid_parameters', message, field);
  }
  return parsed.data;
}

async function findJob(req: Request): Promise<JobDocument> {
  const id = String(req.params.id);
  if (!JobId.safeParse(id).success) {
    throw new ApiError(400, 'invalid_id', 'job id must be a 24-character hex string', 'id');
  }
  const job = await JobModel.findById(id).lean<JobDocument>();
  if (!job) throw new ApiError(404, 'job_not_found', `no job with id ${id}`, 'id');
  return job;
}

function notReady(job: JobDocument, what: string): ApiError {
  return new ApiError(409, 'not_ready', `job is ${job.status}; ${what}`, undefined, { status: job.status });
}

export function jobsRouter(deps: SubmissionDeps): Router {
  const router = Router();
  const upload = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: deps.config.MAX_UPLOAD_BYTES, files: 1, fields: 5, fieldSize: 16 * 1024, parts: 8 },
  }).single('image_file');

  router.get('/parameters', (_req, res) => {
    res.json({ ...PORTRAIT_VOCABULARY, resolution: RESOLUTIONS, defaults: PortraitParameters.parse({}) });
  });

  router.post('/jobs', (req, res, next) => {
    if (!req.is('multipart/form-data')) {
      return next(new ApiError(415, 'multipart_required', 'send multipart/form-data with image_file and parameters', 'image_file'));
    }
    upload(req, res, async (err) => {
      try {
        if (err) throw err;
        const unknown = Object.keys(req.body ?? {}).find((k) => !ALLOWED_FIELDS.has(k));
        if (unknown) throw new ApiError(400, 'unknown_field', `unknown form field "${unknown}"`, unknown);
        const parameters = parseParameters(req.body?.parameters);
        if (!req.file) throw new ApiError(400, 'missing_file', 'image_file is required', 'image_file');
        if (req.file.size === 0) throw new ApiError(400, 'empty_file', 'image_file is empty', 'image_file');
        const reference = await normalizeReferenceImage(req.file.buffer, deps.config);
        const { jobId } = await submitPortraitJob(deps, parameters, reference);
        res.status(202).location(`/jobs/${jobId}`).json({ job_id: jobId, status: 'pending', message: 'Job created and processing started' });
      } catch (e) {
        next(e);
      }
    });
  });

  router.get('/jobs/:id', async (req, res) => {
    res.json(jobView(await findJob(req)));
  });

  async function streamImage(res: Response, key: string) {
    const object = await deps.objects.get(key);
    if (!object) throw new ApiError(404, 'image_missing', 'the image is no longer stored');
    res.type(object.contentType ?? 'application/octet-stream');
    if (object.contentLength !== undefined) res.setHeader('Content-Length', object.contentLength);
    await pipeline(object.body, res);
  }

  router.get('/jobs/:id/result', async (req, res) => {
    const job = await findJob(req);
    const result = job.result as { imageKey: string } | null;
    if (job.status !== 'completed' || !result) throw notReady(job, 'the result exists once it is completed');
    await streamImage(res, result.imageKey);
  });

  /** Every attempt's image stays available, so a failed_validation job still returns its images. */
  router.get('/jobs/:id/attempts/:attempt/image', async (req, res) => {
    const job = await findJob(req);
    const number = Number(req.params.attempt);
    const attempt = (job.attempts as AttemptRecord[]).find((a) => a.number === number);
    if (!Number.isInteger(number) || number < 1) {
      throw new ApiError(400, 'invalid_attempt', 'attempt must be a positive integer', 'attempt');
    }
    if (!attempt) throw new ApiError(404, 'attempt_not_found', `job has no attempt ${number}`, 'attempt');
    if (attempt.images.length === 0) throw notReady(job, `attempt ${number} has no image yet`);
    await streamImage(res, attempt.images[0].key);
  });

  router.get('/jobs/:id/report', async (req, res) => {
    const job = await findJob(req);
    const report = job.report as { result?: unknown } | null;
    if (job.status !== 'failed_validation' || !report?.result) {
      throw notReady(job, 'a report exists only when every attempt failed validation');
    }
    res.json({ job_id: job._id.toHexString(), status: job.status, report: report.result, attempts: jobView(job).attempts });
  });

  return router;
}
