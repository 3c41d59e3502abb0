import { Router, type RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import client from 'prom-client';
import type { Config } from '../../config';
import { ALL_QUEUES, type QueueSet } from '../../flows/queues';
import { renderWorkflowMetrics } from '../../flows/workflowMetrics';
import { JobModel } from '../../store/jobModel';
import { adminAuth } from '../adminAuth';
import type { FailedAuthLimit } from '../failedAuthLimit';

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'waiting-children', 'prioritized'] as const;

/**
 * Prometheus metrics of this API process: HTTP latency per route, and — read at scrape time, so
 * every API process reports the same shared state — queue depths per state, jobs per status, and
 * the workflow metrics the orchestrators aggregate in Redis (step durations, GPU timings, attempts,
 * validation verdicts).
 */
export function metrics(deps: { config: Config; redis: Redis; queues: QueueSet; failedAuth: FailedAuthLimit }): { middleware: RequestHandler; router: Router } {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'apex_api_' });
  const http = new client.Histogram({
    name: 'apex_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const queues = ALL_QUEUES.map((name) => deps.queues.get(name));
  new client.Gauge({
    name: 'apex_queue_jobs',
    help: 'BullMQ jobs per queue and state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      for (const queue of queues) {
        const counts = await queue.getJobCounts(...QUEUE_STATES);
        for (const state of QUEUE_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
      }
    },
  });
  new client.Gauge({
    name: 'apex_portrait_jobs',
    help: 'Portrait jobs per status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const rows = await JobModel.aggregate<{ _id: string; n: number }>([{ $group: { _id: '$status', n: { $sum: 1 } } }]);
      this.reset();
      for (const row of rows) this.set({ status: row._id }, row.n);
    },
  });

  const middleware: RequestHandler = (req, res, next) => {
    const stop = http.startTimer({ method: req.method });
    res.on('finish', () => {
      // The route pattern, not the path: ids would make one series per job.
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : 'unmatched';
      stop({ route, status: String(res.statusCode) });
    });
    next();
  };
  const router = Router();
  router.get('/metrics', adminAuth(deps.config, deps.failedAuth), async (_req, res) => {
    const [own, workflow] = await Promise.all([registry.metrics(), renderWorkflowMetrics(deps.redis, deps.config.QUEUE_PREFIX)]);
    res.type(registry.contentType).send(own + workflow);
  });
  return { middleware, router };
}
