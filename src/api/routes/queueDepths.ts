import { Router } from 'express';
import type { Config } from '../../config';
import { GPU_QUEUES, type GpuQueue, type QueueSet } from '../../flows/queues';
import { adminAuth } from '../adminAuth';
import type { FailedAuthLimit } from '../failedAuthLimit';

/**
 * GET /admin/queue-depths (operator credentials): how many steps wait for a worker on each GPU queue,
 * as one JSON object by queue name, for an autoscaler (deploy/k8s: KEDA's metrics-api scaler, one
 * queue per trigger). A waiting step is in BullMQ's wait list or, queued with a priority as fair
 * dispatch queues every step (fairness/fairDispatch.ts), in its prioritized set: a scaler that read
 * the wait list alone would see no work at all.
 */
export function queueDepthsRouter(deps: { config: Config; queues: QueueSet; failedAuth: FailedAuthLimit }): Router {
  const router = Router();
  router.get('/admin/queue-depths', adminAuth(deps.config, deps.failedAuth), async (_req, res) => {
    const queues = Object.keys(GPU_QUEUES) as GpuQueue[];
    const depths = await Promise.all(
      queues.map(async (name) => {
        const counts = await deps.queues.get(name).getJobCounts('wait', 'prioritized');
        return [name, (counts.wait ?? 0) + (counts.prioritized ?? 0)] as const;
      }),
    );
    res.json(Object.fromEntries(depths));
  });
  return router;
}
