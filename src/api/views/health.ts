import { z } from 'zod';

const Check = z.object({ ok: z.boolean(), error: z.string().optional() });

/** GET /health: each dependency's answer; a 503 also carries the error of the first that failed. */
export const HealthView = z.object({
  status: z.enum(['ok', 'unavailable']),
  checks: z.object({ redis: Check, mongodb: Check, s3: Check }),
});
