import { trace } from '@opentelemetry/api';
import express from 'express';
import helmet from 'helmet';
import type { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { Config } from '../config';
import { QueueName, type QueueSet } from '../flows/queues';
import { logger, withLogContext } from '../logger';
import type { ObjectStore } from '../store/objectStore';
import { authenticate } from './auth';
import { errorHandler, notFound } from './errors';
import { FailedAuthLimit } from './failedAuthLimit';
import { rateLimit } from './rateLimit';
import { requestSpans } from './requestSpans';
import { adminQueuesRouter } from './routes/adminQueues';
import { batchesRouter } from './routes/batches';
import { deliveriesRouter } from './routes/deliveries';
import { docsRouter } from './routes/docs';
import { eventsRouter } from './routes/events';
import { generationsRouter } from './routes/generations';
import { healthRouter } from './routes/health';
import { identitiesRouter } from './routes/identities';
import { jobsRouter } from './routes/jobs';
import { metrics } from './routes/metrics';
import { queueDepthsRouter } from './routes/queueDepths';
import { schedulesRouter } from './routes/schedules';
import { objectStoreOrigin, studioRouter } from './routes/studio';

/** `queues`: the process's BullMQ queues, shared by every route and the dashboard. */
export type AppDeps = { config: Config; objects: ObjectStore; queues: QueueSet; redis: Redis };

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', deps.config.TRUST_PROXY); // req.ip behind a reverse proxy, for per-address limits
  // helmet's defaults, but images may also come from blob: (the studio page shows a portrait's images
  // fetched with the API key) and from the object store (a generation's presigned URLs).
  app.use(helmet({ contentSecurityPolicy: { directives: { 'img-src': ["'self'", 'data:', 'blob:', objectStoreOrigin(deps.config)] } } }));
  // One count of failed credentials per address, tenant keys and operator credentials together.
  const failedAuth = new FailedAuthLimit(deps.config, deps.redis);
  const prometheus = metrics({ ...deps, failedAuth });
  app.use(prometheus.middleware);
  app.use(requestSpans);
  app.use((req, res, next) => {
    // A caller's request id, else the OpenTelemetry trace id (when tracing is on), else a new one.
    const traceId = (req.get('x-request-id') ?? '').slice(0, 64) || trace.getActiveSpan()?.spanContext().traceId || randomUUID();
    res.setHeader('x-request-id', traceId);
    const started = Date.now();
    res.on('finish', () =>
      withLogContext({ traceId }, () =>
        logger.info('request', { method: req.method, path: req.path, status: res.statusCode, ms: Date.now() - started }),
      ),
    );
    withLogContext({ traceId }, next);
  });
  app.use(healthRouter(deps)); // unauthenticated: load balancers and probes
  app.use(docsRouter(deps.config)); // unauthenticated: the API's documentation
  app.use(studioRouter(deps.config)); // unauthenticated: the studio page; its calls carry the visitor's key
  app.use(adminQueuesRouter({ ...deps, failedAuth })); // operator auth, not tenant keys
  app.use(prometheus.router); // operator auth
  app.use(queueDepthsRouter({ ...deps, failedAuth })); // operator auth: the autoscaler's
  app.use(authenticate(deps.config, failedAuth), rateLimit(deps.config, deps.redis));
  app.use(jobsRouter({ ...deps, portraitQueue: deps.queues.get(QueueName.portrait) }));
  app.use(eventsRouter(deps));
  app.use(deliveriesRouter());
  app.use(generationsRouter(deps));
  app.use(batchesRouter(deps));
  app.use(schedulesRouter(deps));
  app.use(identitiesRouter(deps));
  app.use(notFound);
  app.use(errorHandler);
  return app;
}
