import express, { Router } from 'express';
import type { Redis } from 'ioredis';
import { Types } from 'mongoose';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../../config';
import { requestCancel } from '../../flows/cancellation';
import { GenerationRequest, upscaledSizeFits } from '../../flows/contracts/generation';
import { generationCost } from '../../flows/fairness/gpuCost';
import { submitGeneration } from '../../flows/generation/submission';
import { eraseResources } from '../../flows/erasure/resourceErasure';
import { QueueName, type QueueSet } from '../../flows/queues';
import { DEFAULT_GENERATION_EVENTS } from '../../flows/webhooks/events';
import { resolveOutboundTarget } from '../../flows/webhooks/outboundTarget';
import { GenerationModel, type GenerationDocument } from '../../store/generationModel';
import type { ObjectStore } from '../../store/objectStore';
import { GENERATION_STATUSES, TERMINAL_STATUSES } from '../../store/statuses';
import { callerOf } from '../auth';
import { chargeGpuUnits } from '../gpuCharge';
import { ApiError } from '../errors';
import { claimRequest } from '../idempotencyKey';
import { generationView } from '../views/generation';
import { findGeneration, newestFirstPage, PAGE_QUERY } from '../tenantResources';
import { parseOr400 } from '../validation';
import { checkWebhook } from '../webhookInput';

export const GenerationListQuery = z.strictObject({ status: z.enum(GENERATION_STATUSES).optional(), ...PAGE_QUERY });

/**
 * Text-to-image generations: POST /generations (JSON, `?wait=N` seconds at most GENERATION_MAX_WAIT_S),
 * GET /generations (the caller's, newest first), GET /generations/:id (S3 keys with presigned URLs;
 * base64 only when asked), cancel.
 */
export function generationsRouter(deps: { config: Config; redis: Redis; objects: ObjectStore; queues: QueueSet }): Router {
  const router = Router();
  const queue = deps.queues.get(QueueName.generation);
  const WaitQuery = z.strictObject({ wait: z.coerce.number().int().min(0).max(deps.config.GENERATION_MAX_WAIT_S).optional() });
  const GetQuery = z.strictObject({ include: z.enum(['base64']).optional() });
  const CheckedRequest = GenerationRequest.superRefine(upscaledSizeFits);

  router.post('/generations', express.json({ limit: '64kb' }), async (req, res) => {
    const query = parseOr400(WaitQuery, req.query, 'invalid_query');
    const { secrets: given, ...request } = parseOr400(CheckedRequest, req.body, 'invalid_generation');
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
    if (existing) return void res.status(200).setHeader('Idempotent-Replayed', 'true').location(`/generations/${claim.replayOf}`).json(await generationView(deps.objects, existing, 'as_requested'));
    // A claimed key whose generation was never created (the first request failed) creates it now.
    id = claim.replayOf ?? id;
    let doc: GenerationDocument;
    try {
      const charge = await chargeGpuUnits(deps, res, tenant, generationCost(request));
      doc = await submitGeneration({ config: deps.config, queue }, { id, tenant, request, secrets, webhook }).catch(async (e: unknown) => {
        await charge.refund();
        throw e;
      });
    } catch (e) {
      await claim.release();
      throw e;
    }
    // Without ?wait the answer is the generation as created (pending), whatever the orchestrator did since.
    const deadline = Date.now() + (query.wait ?? 0) * 1000;
    while (!TERMINAL_STATUSES.has(doc.status) && Date.now() < deadline && !req.socket.destroyed) {
      await new Promise((r) => setTimeout(r, 200));
      doc = (await GenerationModel.findById(id).lean<GenerationDocument>())!;
    }
    res.status(TERMINAL_STATUSES.has(doc.status) ? 200 : 202).location(`/generations/${id}`).json(await generationView(deps.objects, doc, 'as_requested'));
  });

  router.get('/generations', async (req, res) => {
    const query = parseOr400(GenerationListQuery, req.query, 'invalid_query');
    const filter = { tenant: callerOf(res).tenant, ...(query.status ? { status: query.status } : {}) };
    const { page, next_cursor } = await newestFirstPage<GenerationDocument>(GenerationModel, filter, query);
    res.json({ generations: await Promise.all(page.map((d) => generationView(deps.objects, d, 'never'))), next_cursor });
  });

  router.get('/generations/:id', async (req, res) => {
    const query = parseOr400(GetQuery, req.query, 'invalid_query');
    res.json(await generationView(deps.objects, await findGeneration(req, res), query.include === 'base64' ? 'always' : 'as_requested'));
  });

  router.post('/generations/:id/cancel', async (req, res) => {
    const doc = await findGeneration(req, res);
    if (TERMINAL_STATUSES.has(doc.status)) {
      throw new ApiError(409, 'not_cancellable', `generation is already ${doc.status}`, undefined, { status: doc.status });
    }
    await requestCancel(deps.redis, deps.config.QUEUE_PREFIX, doc._id.toHexString());
    res.status(202).json({ generation_id: doc._id.toHexString(), status: 'cancelling' });
  });

  /** Erases the generation and everything it left, cancelling it first; then 404 (see DELETE /jobs/:id). Images sent to the caller's own bucket are the caller's. */
  router.delete('/generations/:id', async (req, res) => {
    const doc = await findGeneration(req, res);
    await eraseResources(deps, [{ kind: 'generation', id: doc._id.toHexString(), tenant: doc.tenant }], 'request');
    res.status(204).end();
  });

  return router;
}
