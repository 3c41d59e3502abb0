import express, { Router } from 'express';
import type { Redis } from 'ioredis';
import { Types } from 'mongoose';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../../config';
import { childStatuses } from '../../flows/batches/progress';
import { submitBatch } from '../../flows/batches/submission';
import { batchCost } from '../../flows/fairness/gpuCost';
import { requestCancel } from '../../flows/cancellation';
import { BatchRequest } from '../../flows/contracts/batch';
import { JobId } from '../../flows/contracts/common';
import { eraseResources } from '../../flows/erasure/resourceErasure';
import { QueueName, type QueueSet } from '../../flows/queues';
import type { ObjectStore } from '../../store/objectStore';
import { DEFAULT_BATCH_EVENTS } from '../../flows/webhooks/events';
import { BatchModel, type BatchDocument } from '../../store/batchModel';
import { TERMINAL_STATUSES } from '../../store/statuses';
import { callerOf } from '../auth';
import { chargeGpuUnits } from '../gpuCharge';
import { ApiError } from '../errors';
import { claimRequest } from '../idempotencyKey';
import { findBatch, newestFirstPage, PAGE_QUERY } from '../tenantResources';
import { parseOr400 } from '../validation';
import { batchView } from '../views/batch';
import { checkWebhook } from '../webhookInput';

export const BatchListQuery = z.strictObject({ schedule_id: JobId.optional(), ...PAGE_QUERY });


/** One-off batches: POST /batches fans out to portrait jobs or generations; GET shows counts per state and the summary; cancel. */
export function batchesRouter(deps: { config: Config; redis: Redis; queues: QueueSet; objects: ObjectStore }): Router {
  const router = Router();
  const batchQueue = deps.queues.get(QueueName.batch);

  router.post('/batches', express.json({ limit: '512kb' }), async (req, res) => {
    const body = parseOr400(BatchRequest, req.body, 'invalid_batch');
    const { target } = body;
    const webhook = await checkWebhook(deps.config, body.webhook ?? {}, DEFAULT_BATCH_EVENTS);
    const { tenant } = callerOf(res);
    let id = new Types.ObjectId().toHexString();
    const claim = await claimRequest(req, tenant, () => createHash('sha256').update(JSON.stringify(body)).digest('hex'), id);
    if (claim.replayOf && (await BatchModel.exists({ _id: claim.replayOf }))) {
      return void res.status(200).setHeader('Idempotent-Replayed', 'true').location(`/batches/${claim.replayOf}`).json({ batch_id: claim.replayOf, status: 'pending' });
    }
    id = claim.replayOf ?? id;
    try {
      const charge = await chargeGpuUnits(deps, res, tenant, batchCost(target, deps.config.MAX_ATTEMPTS), 'target');
      await submitBatch({ config: deps.config, batchQueue }, { id, tenant, target, webhook }).catch(async (e: unknown) => {
        await charge.refund();
        throw e;
      });
    } catch (e) {
      await claim.release();
      throw e;
    }
    res.status(202).location(`/batches/${id}`).json({ batch_id: id, status: 'pending' });
  });

  router.get('/batches', async (req, res) => {
    const query = parseOr400(BatchListQuery, req.query, 'invalid_query');
    const filter = { tenant: callerOf(res).tenant, ...(query.schedule_id ? { scheduleId: query.schedule_id } : {}) };
    const { page, next_cursor } = await newestFirstPage<BatchDocument>(BatchModel, filter, query);
    res.json({ batches: await Promise.all(page.map((d) => batchView(d, false))), next_cursor });
  });

  router.get('/batches/:id', async (req, res) => {
    res.json(await batchView(await findBatch(req, res), true));
  });

  /** Stops the fan-out (if still running) and cancels every child that has not ended; the batch then completes with them counted. */
  router.post('/batches/:id/cancel', async (req, res) => {
    const batch = await findBatch(req, res);
    if (batch.status === 'completed' || batch.status === 'failed') {
      throw new ApiError(409, 'not_cancellable', `batch is already ${batch.status}`, undefined, { status: batch.status });
    }
    const id = batch._id.toHexString();
    await requestCancel(deps.redis, deps.config.QUEUE_PREFIX, id);
    const open = (await childStatuses(batch.items)).filter((c) => !TERMINAL_STATUSES.has(c.status));
    for (const child of open) await requestCancel(deps.redis, deps.config.QUEUE_PREFIX, child.id);
    res.status(202).json({ batch_id: id, status: 'cancelling', children_cancelled: open.length });
  });

  /** Erases the batch with every child it made (and the inbox photos they came from), cancelling what runs; then 404 (see DELETE /jobs/:id). */
  router.delete('/batches/:id', async (req, res) => {
    const batch = await findBatch(req, res);
    await eraseResources(deps, [{ kind: 'batch', id: batch._id.toHexString(), tenant: batch.tenant }], 'request');
    res.status(204).end();
  });

  return router;
}
