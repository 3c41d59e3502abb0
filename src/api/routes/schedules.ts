import express, { Router } from 'express';
import type { Redis } from 'ioredis';
import { Types } from 'mongoose';
import type { Config } from '../../config';
import { checkCron, createSchedule, deleteSchedule, nextFireTime, type ScheduleDeps } from '../../flows/batches/schedules';
import { ScheduleRequest } from '../../flows/contracts/schedule';
import { QueueName, type QueueSet } from '../../flows/queues';
import { DEFAULT_BATCH_EVENTS } from '../../flows/webhooks/events';
import { ScheduleModel, type ScheduleDocument } from '../../store/scheduleModel';
import { batchCost } from '../../flows/fairness/gpuCost';
import { callerOf } from '../auth';
import { refuseOverGpuCap } from '../gpuCharge';
import { ApiError } from '../errors';
import { findSchedule } from '../tenantResources';
import { parseOr400 } from '../validation';
import { scheduleView } from '../views/schedule';
import { checkWebhook } from '../webhookInput';


/** Scheduled batches: each firing of the cron pattern (in its time zone) runs the target as a new batch. */
export function schedulesRouter(deps: { config: Config; redis: Redis; queues: QueueSet }): Router {
  const router = Router();
  const scheduleDeps: ScheduleDeps = {
    config: deps.config,
    redis: deps.redis,
    scheduleQueue: deps.queues.get(QueueName.schedule),
  };

  const view = async (doc: ScheduleDocument) => scheduleView(doc, await nextFireTime(scheduleDeps, doc._id.toHexString()));

  router.post('/schedules', express.json({ limit: '512kb' }), async (req, res) => {
    const request = parseOr400(ScheduleRequest, req.body, 'invalid_schedule');
    const problem = checkCron(request.cron, request.tz, deps.config.SCHEDULE_MIN_INTERVAL_S);
    if (problem) throw new ApiError(400, 'invalid_schedule', `${problem.field}: ${problem.message}`, problem.field);
    const webhook = await checkWebhook(deps.config, request.webhook ?? {}, DEFAULT_BATCH_EVENTS);
    const { tenant } = callerOf(res);
    const id = new Types.ObjectId().toHexString();
    const firingCost = batchCost(request.target, deps.config.MAX_ATTEMPTS);
    refuseOverGpuCap(deps.config, firingCost, 'target', "each firing's batch costs");
    const creation = await createSchedule(scheduleDeps, { id, tenant, request, webhook });
    if (!creation.created && creation.reason === 'too_many') {
      throw new ApiError(409, 'too_many_schedules', `a tenant may have at most ${deps.config.SCHEDULE_MAX_PER_TENANT} schedules; delete one first`);
    }
    if (!creation.created) {
      const { cost, committed, budget } = creation;
      const window = deps.config.GPU_BUDGET_WINDOW_S;
      throw new ApiError(
        422,
        'schedule_over_gpu_budget',
        `this schedule's firings would cost ${cost} GPU units per ${window} s and this tenant's other schedules ${committed}, more than its GPU budget of ${budget} units per ${window} s; fire less often or run fewer or smaller items`,
        'cron',
        { cost, committed, budget_units: budget, window_s: window },
      );
    }
    res.status(201).location(`/schedules/${id}`).json(await view((await ScheduleModel.findById(id).lean<ScheduleDocument>())!));
  });

  router.get('/schedules', async (_req, res) => {
    const docs = await ScheduleModel.find({ tenant: callerOf(res).tenant }).sort({ _id: -1 }).lean<ScheduleDocument[]>();
    res.json({ schedules: await Promise.all(docs.map(view)) });
  });

  router.get('/schedules/:id', async (req, res) => {
    res.json(await view(await findSchedule(req, res)));
  });

  router.delete('/schedules/:id', async (req, res) => {
    const doc = await findSchedule(req, res);
    await deleteSchedule(scheduleDeps, doc._id.toHexString());
    res.status(204).end();
  });

  return router;
}
