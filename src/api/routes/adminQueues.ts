import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { Router } from 'express';
import type { Config } from '../../config';
import { ALL_QUEUES, type QueueSet } from '../../flows/queues';
import { adminAuth } from '../adminAuth';
import type { FailedAuthLimit } from '../failedAuthLimit';

const BASE_PATH = '/admin/queues';

/**
 * Bull Board at /admin/queues behind operator auth; ADMIN_READ_ONLY hides retry/remove/clean.
 * Step payloads carry only S3 keys and sealed secrets, so nothing secret shows here.
 */
export function adminQueuesRouter(deps: { config: Config; queues: QueueSet; failedAuth: FailedAuthLimit }): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BASE_PATH);
  const readOnlyMode = deps.config.ADMIN_READ_ONLY;
  createBullBoard({
    queues: ALL_QUEUES.map((name) => new BullMQAdapter(deps.queues.get(name), { readOnlyMode })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'APEX Portraits' } },
  });
  const router = Router();
  router.use(BASE_PATH, adminAuth(deps.config, deps.failedAuth), (_req, res, next) => {
    // The dashboard's own page needs its scripts and styles; the API's strict policy stays elsewhere.
    res.setHeader('Content-Security-Policy', "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline' https:; img-src 'self' data:; font-src 'self' data: https:");
    next();
  }, serverAdapter.getRouter());
  return router;
}
