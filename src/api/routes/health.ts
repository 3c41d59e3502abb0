import { Router } from 'express';
import type { Redis } from 'ioredis';
import { pingMongo } from '../../store/mongo';
import type { ObjectStore } from '../../store/objectStore';

const TIMEOUT_MS = 2000;

function withTimeout(check: () => Promise<unknown>): Promise<{ ok: true } | { ok: false; error: string }> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
  });
  return Promise.race([check(), timeout])
    .then(() => ({ ok: true as const }))
    .catch((err: Error) => ({ ok: false as const, error: err.message || err.name }))
    .finally(() => clearTimeout(timer));
}

/** GET /health: asks Redis, MongoDB and S3 for real; 503 names the dependency that failed. */
export function healthRouter(deps: { redis: Redis; objects: ObjectStore }): Router {
  const router = Router();
  router.get('/health', async (_req, res) => {
    const checks = {
      redis: await withTimeout(() => deps.redis.ping()),
      mongodb: await withTimeout(pingMongo),
      s3: await withTimeout(() => deps.objects.ping()),
    };
    const failed = Object.entries(checks).filter(([, c]) => !c.ok).map(([name]) => name);
    if (failed.length === 0) return void res.json({ status: 'ok', checks });
    res.status(503).json({
      status: 'unavailable',
      checks,
      error: { code: 'dependency_unavailable', message: `unavailable: ${failed.join(', ')}`, field: failed[0] },
    });
  });
  return router;
}
