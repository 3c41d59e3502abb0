import { GetObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import express, { Router, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import { Types } from 'mongoose';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../../config';
import { requestCancel } from '../../flows/cancellation';
import { GENERATION_QUEUE, GenerationRequest } from '../../flows/contracts/generation';
import type { GenerationJobData } from '../../flows/generationOrchestrator';
import { TERMINAL_STATUSES } from '../../flows/jobEvents';
import { submitGeneration } from '../../flows/generationSubmission';
import type { QueueSet } from '../../flows/queues';
import { resolveOutboundTarget } from '../../flows/outboundTarget';
import { DEFAULT_GENERATION_EVENTS } from '../../flows/webhooks/events';
import { GenerationModel, type GenerationDocument } from '../../store/generationModel';
import type { ObjectStore } from '../../store/objectStore';
import { callerOf } from '../auth';
import { ApiError } from '../errors';
import { claimRequest } from '../idempotencyKey';
import { parseOr400 } from '../validation';
import { checkWebhook } from '../webhookInput';
import { findOwned } from '../tenantResources';

const URL_TTL_S = 3600;


export const findGeneration = (req: Request, res: Response) => findOwned<GenerationDocument>(GenerationModel, 'generation', req, res);

/**
 * Text-to-image generations: POST /generations (JSON, `?wait=N` seconds at most GENERATION_MAX_WAIT_S),
 * GET /generations/:id (S3 keys with presigned URLs; base64 only when asked), cancel.
 */
export function generationsRouter(deps: { config: Config; redis: Redis; objects: ObjectStore; queues: QueueSet }): Router {
  const router = Router();
  const queue = deps.queues.get<GenerationJobData>(GENERATION_QUEUE);
  const WaitQuery = z.strictObject({ wait: z.coerce.number().int().min(0).max(deps.config.GENERATION_MAX_WAIT_S).optional() });
  const GetQuery = z.strictObject({ include: z.enum(['base64']).optional() });

  async function view(doc: GenerationDocument, base64: boolean) {
    const request = doc.request as GenerationRequest;
    const images = await Promise.all(
      (doc.images as { key: string; bucket?: string; width: number; height: number; contentType: string }[]).map(async (image) =>
        image.bucket
          ? // In the caller's own bucket: the deployment holds no keys to it outside the step.
            { key: image.key, bucket: image.bucket, width: image.width, height: image.height, content_type: image.contentType }
          : {
              key: image.key,
              width: image.width,
              height: image.height,
              content_type: image.contentType,
              url: await getSignedUrl(deps.objects.client, new GetObjectCommand({ Bucket: deps.objects.bucket, Key: image.key }), { expiresIn: URL_TTL_S }),
              url_expires_in: URL_TTL_S,
              ...(base64 || request.return_base64 ? { base64: (await deps.objects.getBuffer(image.key))?.toString('base64') ?? null } : {}),
            },
      ),
    );
    return {
      generation_id: doc._id.toHexString(),
      status: doc.status,
      request,
      seed: doc.seed,
      images,
      timings: doc.timings ?? null,
      error: doc.error ?? null,
      created_at: doc.createdAt?.toISOString() ?? null,
      finished_at: doc.finishedAt?.toISOString() ?? null,
    };
  }

  router.post('/generations', express.json({ limit: '64kb' }), async (req, res) => {
    const query = parseOr400(WaitQuery, req.query, 'invalid_query');
    const { secrets: given, ...request } = parseOr400(GenerationRequest, req.body, 'invalid_generation');
    const secrets = given && Object.keys(given).length > 0 ? given : undefined;
    if (Boolean(request.destination) !== Boolean(secrets?.s3)) {
      throw new ApiError(400, 'invalid_generation', 'destination and secrets.s3 go together: the bucket and the keys to write to it', request.destination ? 'secrets.s3' : 'destination');
    }
    if (request.destination?.endpoint) {
      await resolveOutboundTarget(request.destination.endpoint, deps.config.DESTINATION_ALLOW_PRIVATE).catch((err: Error) => {
        throw new ApiError(400, 'invalid_generation', `destination.endpoint: ${err.message}`, 'destination.endpoint');
      });
    }
    const webhook = await checkWebhook(deps.config, request.webhook ?? {}, DEFAULT_GENERATION_EVENTS);
    if (secrets && !deps.config.SECRETS_KEY) {
      throw new ApiError(400, 'secrets_disabled', 'this deployment has no SECRETS_KEY, so it accepts no per-request secrets', 'secrets');
    }
    const { tenant } = callerOf(res);
    let id = new Types.ObjectId().toHexString();
    // The secrets' values stay out of the request's fingerprint (only which ones were sent).
    const fingerprint = () => createHash('sha256').update(JSON.stringify({ request, secrets: Object.keys(secrets ?? {}).sort() })).digest('hex');
    const claim = await claimRequest(req, tenant, fingerprint, id);
    const existing = claim.replayOf ? await GenerationModel.findById(claim.replayOf).lean<GenerationDocument>() : null;
    if (existing) return void res.status(200).setHeader('Idempotent-Replayed', 'true').location(`/generations/${claim.replayOf}`).json(await view(existing, false));
    // A claimed key whose generation was never created (the first request failed) creates it now.
    id = claim.replayOf ?? id;
    try {
      await submitGeneration({ config: deps.config, queue }, { id, tenant, request, secrets, webhook });
    } catch (e) {
      await claim.release();
      throw e;
    }
    const deadline = Date.now() + (query.wait ?? 0) * 1000;
    let doc = (await GenerationModel.findById(id).lean<GenerationDocument>())!;
    while (!TERMINAL_STATUSES.has(doc.status) && Date.now() < deadline && !req.socket.destroyed) {
      await new Promise((r) => setTimeout(r, 200));
      doc = (await GenerationModel.findById(id).lean<GenerationDocument>())!;
    }
    res.status(TERMINAL_STATUSES.has(doc.status) ? 200 : 202).location(`/generations/${id}`).json(await view(doc, false));
  });

  router.get('/generations/:id', async (req, res) => {
    const query = parseOr400(GetQuery, req.query, 'invalid_query');
    res.json(await view(await findGeneration(req, res), query.include === 'base64'));
  });

  router.post('/generations/:id/cancel', async (req, res) => {
    const doc = await findGeneration(req, res);
    if (TERMINAL_STATUSES.has(doc.status)) {
      throw new ApiError(409, 'not_cancellable', `generation is already ${doc.status}`, undefined, { status: doc.status });
    }
    await requestCancel(deps.redis, deps.config.QUEUE_PREFIX, doc._id.toHexString());
    res.status(202).json({ generation_id: doc._id.toHexString(), status: 'cancelling' });
  });

  return router;
}
