import { isIP } from 'node:net';
import { z } from 'zod';

/** A TRUST_PROXY value Express understands, and nothing wider than it says (no `true`: every sender believed). */
function trustedProxies(value: string): boolean {
  if (/^\d+$/.test(value.trim())) return true;
  return value.split(',').every((part) => {
    const [address, bits, ...rest] = part.trim().split('/');
    if (['loopback', 'linklocal', 'uniquelocal'].includes(address) && bits === undefined) return true;
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    return family !== 0 && rest.length === 0 && (bits === undefined || (/^\d+$/.test(bits) && Number(bits) <= max));
  });
}

const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1');

/** Every setting the TypeScript processes read, parsed once from the environment. */
export const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8001),
  /**
   * The address the API listens on: loopback by default, so `npm start` and `npm run dev` are not
   * reachable from other machines; the container image sets 0.0.0.0 (Dockerfile.api, deploy/k8s).
   */
  HOST: z.union([z.ipv4(), z.ipv6(), z.hostname()]).default('127.0.0.1'),

  REDIS_URL: z.url().default('redis://127.0.0.1:6379'),
  /** BullMQ key prefix: isolates one deployment (or one test suite) on a shared Redis. */
  QUEUE_PREFIX: z.string().regex(/^[a-zA-Z0-9_-]+$/).default('apex'),
  MONGO_URL: z.string().startsWith('mongodb').default('mongodb://127.0.0.1:27017/apex'),

  S3_ENDPOINT: z.url().optional(),
  S3_REGION: z.string().default('us-east-1'),
  S3_BUCKET: z.string().min(3).default('apex-portraits'),
  S3_ACCESS_KEY_ID: z.string().optional(),
  S3_SECRET_ACCESS_KEY: z.string().optional(),
  S3_FORCE_PATH_STYLE: bool.default(true),

  MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  /** BullMQ retries of one step for infrastructure failures, with exponential backoff. */
  STEP_RETRIES: z.coerce.number().int().min(1).max(20).default(3),
  STEP_BACKOFF_MS: z.coerce.number().int().min(1).default(2000),
  /** A step not finished this long after it was queued fails the job instead of hanging. */
  STEP_TIMEOUT_MS: z.coerce.number().int().min(100).default(15 * 60_000),
  /** An identity's training step's deadline from being queued (a queue of trainings ahead of it included). */
  IDENTITY_TRAINING_TIMEOUT_MS: z.coerce.number().int().min(100).default(6 * 3600_000),
  /** How long POST /identities waits for the face check of its photos before it answers 503 (nothing kept). */
  IDENTITY_PHOTO_CHECK_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /** Seconds finished step jobs stay in Redis: long enough for a replaying orchestrator to find them. */
  STEP_RETENTION_S: z.coerce.number().int().min(60).default(7 * 24 * 3600),

  /** On SIGTERM, how long in-flight work (jobs, open responses such as event streams) may take before the process exits anyway. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(30_000),
  ORCHESTRATOR_CONCURRENCY: z.coerce.number().int().min(1).default(50),
  /** How long a crashed orchestrator's job stays locked before another process picks it up. */
  ORCHESTRATOR_LOCK_MS: z.coerce.number().int().min(1000).default(30_000),
  /**
   * Times an orchestrator job may lose its lock (a crashed or starved process) before BullMQ fails
   * it. Replays are safe, so this is generous; it still ends a job that kills every process it meets.
   */
  ORCHESTRATOR_MAX_STALLS: z.coerce.number().int().min(1).default(5),

  /**
   * required: every route but /health needs an API key. open: no auth (local development only).
   * auto: required as soon as one key exists. Production refuses to start unless required.
   */
  AUTH_MODE: z.enum(['auto', 'required', 'open']).default('auto'),
  /** Requests per minute per API key (per client address when open). */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(120),
  /**
   * Failed authentication attempts (wrong API keys, wrong operator credentials) per client address
   * per minute, across every API process; beyond, that address gets 429 until the minute ends.
   */
  FAILED_AUTH_PER_MINUTE: z.coerce.number().int().min(1).default(20),
  /**
   * Whose X-Forwarded-For tells a client's address (per-address limits): Express's `trust proxy` as
   * a comma-separated list of loopback, linklocal, uniquelocal, addresses and CIDRs, or a number of
   * hops. Behind a load balancer that is not on loopback, name it, or every client shares its address.
   */
  TRUST_PROXY: z
    .string()
    .default('loopback')
    .refine(trustedProxies, 'must be a number of hops, or loopback, linklocal, uniquelocal, addresses and CIDRs separated by commas')
    .transform((v) => (/^\d+$/.test(v.trim()) ? Number(v) : v.split(',').map((p) => p.trim()))),
  /** Open event streams (SSE) per tenant, counted across every API process sharing Redis: one more answers 429. */
  EVENT_STREAMS_PER_TENANT: z.coerce.number().int().min(1).default(20),
  /** Open event streams one API process serves, all tenants together: one more answers 503. */
  EVENT_STREAMS_MAX: z.coerce.number().int().min(1).default(1000),
  /** How often open event streams re-check their API key: a revoked key's streams end within about this long. */
  EVENT_STREAM_AUTH_CHECK_MS: z.coerce.number().int().min(50).default(5000),

  /** Standard Webhooks signing secret (`whsec_` + base64); without it, jobs cannot ask for webhooks. */
  WEBHOOK_SECRET: z.string().min(24).optional(),
  /** Allow webhook targets on loopback/private/link-local addresses (off: SSRF protection). */
  WEBHOOK_ALLOW_PRIVATE: bool.default(false),
  WEBHOOK_ATTEMPTS: z.coerce.number().int().min(1).max(30).default(8),
  WEBHOOK_BACKOFF_MS: z.coerce.number().int().min(1).default(5000),
  /** A delivery attempt's whole deadline (connect, headers and body of the answer): a receiver dripping bytes is cut at it. */
  WEBHOOK_ATTEMPT_DEADLINE_MS: z.coerce.number().int().min(100).default(10_000),
  /** Deliveries of one tenant a notifier process runs at once (of its 20): the others wait, so one tenant's slow receivers never hold every slot. */
  WEBHOOK_CONCURRENCY_PER_TENANT: z.coerce.number().int().min(1).default(5),

  /** AES-256-GCM key (32 bytes, base64) for per-request secrets; without it, requests carrying secrets are refused. */
  SECRETS_KEY: z.string().refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes, base64-encoded').optional(),
  /** Allow a generation's destination endpoint on loopback/private addresses (off: SSRF protection). */
  DESTINATION_ALLOW_PRIVATE: bool.default(false),
  /** Upper bound of POST /generations?wait=N, in seconds. */
  GENERATION_MAX_WAIT_S: z.coerce.number().int().min(0).max(300).default(30),

  /** Operator access to /admin/queues and /metrics (HTTP Basic password or Bearer); closed without it. */
  ADMIN_TOKEN: z.string().min(16).optional(),
  /**
   * The dashboard shows queues and jobs but offers no retry, remove, clean or edit. On by default:
   * a writable dashboard lets an operator change queued work, so it is a deliberate `false`.
   */
  ADMIN_READ_ONLY: bool.default(true),

  /** Where tenants drop reference photos for batches and schedules: `<prefix><tenant>/...` in S3_BUCKET. */
  S3_INBOX_PREFIX: z.string().regex(/^([A-Za-z0-9_.-]+\/)+$/, 'must be folder names ending in "/"').default('inbox/'),
  /** The shortest interval a schedule may fire at: a cron that fires more often is refused. */
  SCHEDULE_MIN_INTERVAL_S: z.coerce.number().int().min(1).default(60),
  /** Schedules per tenant. */
  SCHEDULE_MAX_PER_TENANT: z.coerce.number().int().min(1).default(50),

  /** OTLP/HTTP collector (e.g. http://otel-collector:4318): traces are exported there; unset, tracing is off. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.preprocess((v) => (v === '' ? undefined : v), z.url({ protocol: /^https?$/ }).optional()),
  OTEL_SERVICE_NAME: z.string().min(1).default('apex-portraits'),

  /**
   * Retention, in days after a job, generation or batch ended (fractions allowed; 0 keeps forever).
   * Inputs are the people's photos (a job's reference, the inbox photo it came from); outputs are
   * everything else, and erasing them erases the resource (erasure/retention.ts).
   */
  RETENTION_INPUTS_DAYS: z.coerce.number().min(0).default(1),
  RETENTION_OUTPUTS_DAYS: z.coerce.number().min(0).default(30),
  /** How often the orchestrators look for data past its retention, and how many resources of a kind one look erases at most. */
  RETENTION_SWEEP_S: z.coerce.number().int().min(1).default(900),
  RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(100),
  /** How long a DELETE waits for a cancelled job's running step to stop before the rest of its erasure is left to the orchestrators. */
  ERASURE_SETTLE_MS: z.coerce.number().int().min(0).default(30_000),
  /** An append-only file of every erasure (ids only), kept outside the backed-up data: replayed at start so a restore cannot bring erased data back. */
  ERASURE_LOG: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),

  /**
   * Fair share between tenants (src/flows/fairness/). GPU steps are dispatched by priority: a step's
   * priority is 1 + (the tenant's GPU steps queued or running) / its weight, so between tenants with
   * work waiting the GPU takes their steps in turn, and a lone tenant still gets every worker.
   * A tenant with GPU_IN_FLIGHT_PER_TENANT steps queued or running waits before it queues another.
   */
  GPU_WEIGHT: z.coerce.number().int().min(1).max(100).default(1),
  GPU_IN_FLIGHT_PER_TENANT: z.coerce.number().int().min(1).default(1000),
  /**
   * A request's cost in GPU units (one unit: one denoising step over one megapixel; gpuCost.ts has the
   * formula): one request (a batch or a schedule's firing counts whole) costing more is refused with 422.
   */
  GPU_COST_MAX_PER_REQUEST: z.coerce.number().int().min(1).default(50_000),
  /**
   * GPU units a tenant may spend per GPU_BUDGET_WINDOW_S, across every API process (Redis): beyond,
   * 429 with Retry-After until the window refills; 0 turns the budget off. A schedule whose firings
   * in one window (with the tenant's other schedules') would cost more is refused when created.
   */
  GPU_BUDGET_UNITS: z.coerce.number().int().min(0).default(1_000_000),
  GPU_BUDGET_WINDOW_S: z.coerce.number().int().min(1).default(3600),
  /**
   * Per-tenant overrides of the settings above, as JSON: {"acme": {"weight": 2, "inFlight": 50,
   * "budgetUnits": 5000000}}. A tenant not listed gets the defaults.
   */
  TENANT_LIMITS: z.preprocess(
    (v) => (v === undefined || v === '' ? '{}' : v),
    z
      .string()
      .transform((text, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.addIssue({ code: 'custom', message: 'must be JSON like {"acme": {"weight": 2, "inFlight": 50, "budgetUnits": 5000000}}' });
          return z.NEVER;
        }
      })
      .pipe(
        z.record(
          z.string().min(1),
          z.strictObject({
            weight: z.number().int().min(1).max(100).optional(),
            inFlight: z.number().int().min(1).optional(),
            budgetUnits: z.number().int().min(0).optional(),
          }),
        ),
      ),
  ),

  MAX_UPLOAD_BYTES: z.coerce.number().int().min(1024).default(20 * 1024 * 1024),
  /** A whole POST /identities body (up to 20 photos, each within MAX_UPLOAD_BYTES): refused by its Content-Length before it is read. */
  IDENTITY_UPLOAD_MAX_BYTES: z.coerce.number().int().min(1024).default(100 * 1024 * 1024),
  /**
   * Uploads (POST /jobs) received and decoded at once per API process; UPLOAD_QUEUE more wait (a
   * waiting upload holds only its socket: its body is not read yet), the rest get 503.
   */
  UPLOAD_CONCURRENCY: z.coerce.number().int().min(1).default(4),
  UPLOAD_QUEUE: z.coerce.number().int().min(0).default(100),
  /**
   * One tenant's share of those: at most this many of its uploads received at once and this many
   * waiting (unset: half of each, at least 1), so a tenant's slow clients never take every slot;
   * beyond its waiting share a tenant gets 429.
   */
  UPLOAD_CONCURRENCY_PER_TENANT: z.coerce.number().int().min(1).optional(),
  UPLOAD_QUEUE_PER_TENANT: z.coerce.number().int().min(0).optional(),
  /** A request's headers must arrive within this (slow-header clients are cut with 408). */
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /** A whole request, its body included, must arrive within this: 120 s carries a 20 MB upload at 1.4 Mbit/s. */
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
  /** An idle keep-alive connection is closed after this. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).default(5_000),
  MAX_INPUT_PIXELS: z.coerce.number().int().min(1).default(50_000_000),
  MIN_IMAGE_SIDE: z.coerce.number().int().min(1).default(128),
});

export type Config = z.infer<typeof EnvSchema>;

const ProductionSafe = EnvSchema.refine((c) => c.NODE_ENV !== 'production' || c.AUTH_MODE === 'required', {
  path: ['AUTH_MODE'],
  message: 'must be "required" when NODE_ENV=production (create keys with `npm run keys -- create --tenant NAME`)',
});

export class ConfigError extends Error {
  name = 'ConfigError';
}

/**
 * The environment that loads back as `config` (a child process's): the settings parsed from JSON
 * (TENANT_LIMITS) as JSON, lists (TRUST_PROXY) comma-separated, the rest as they print.
 */
export function configEnv(config: Config): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => [k, v !== null && typeof v === 'object' && !Array.isArray(v) ? JSON.stringify(v) : String(v)]),
  );
}

/** Parses the environment; a bad value stops the process with a message naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = ProductionSafe.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
