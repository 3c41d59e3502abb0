import { z } from 'zod';
import type { Config } from '../config';
import { BatchRequest } from '../flows/contracts/batch';
import { IdentityId, JobId, MAX_REFERENCE_PHOTOS } from '../flows/contracts/common';
import { IDENTITY_PHOTOS, IdentityTrainingOptions } from '../flows/contracts/identity';
import { GenerationRequest } from '../flows/contracts/generation';
import { LoraSpec } from '../flows/contracts/generateStep';
import { PortraitParameters } from '../flows/contracts/portraitParameters';
import { ScheduleRequest } from '../flows/contracts/schedule';
import { WEBHOOK_EVENTS } from '../flows/webhooks/events';
import { BatchListQuery } from './routes/batches';
import { GenerationListQuery } from './routes/generations';
import { IdentityListQuery } from './routes/identities';
import { JobListQuery } from './routes/jobs';
import { BatchAccepted, BatchCancelling, BatchList, BatchView } from './views/batch';
import { deliveryList } from './views/delivery';
import { GenerationCancelling, GenerationList, GenerationView } from './views/generation';
import { HealthView } from './views/health';
import { IdentityAccepted, IdentityList, IdentityView, PhotoCheckView } from './views/identity';
import { JobAccepted, JobList, JobReportView, JobView } from './views/job';
import { ScheduleList, ScheduleView } from './views/schedule';

/**
 * The OpenAPI 3.1 document, built from the zod schemas the routes validate with (query, form
 * fields) and the public views the routes answer with (views/). A test fails when a route of the app is missing here.
 */

export const ERROR_CODES = {
  400: ['invalid_hf_token', 'invalid_candidates', 'invalid_loras', 'invalid_batch', 'invalid_schedule', 'invalid_generation', 'secrets_disabled', 'bad_upload', 'invalid_webhook', 'webhooks_disabled', 'invalid_parameters', 'invalid_json', 'unknown_field', 'missing_file', 'empty_file', 'unreadable_image', 'image_too_small', 'invalid_id', 'invalid_query', 'invalid_attempt', 'invalid_idempotency_key', 'malformed_request', 'malformed_multipart', 'unexpected_field', 'too_many_files', 'too_many_fields', 'too_many_parts', 'too_few_files', 'duplicate_field', 'invalid_name', 'invalid_training', 'invalid_identity_id', 'ambiguous_person', 'invalid_index'],
  401: ['unauthorized', 'admin_unauthorized'],
  404: ['batch_not_found', 'schedule_not_found', 'generation_not_found', 'job_not_found', 'identity_not_found', 'attempt_not_found', 'image_missing', 'route_not_found'],
  409: ['not_ready', 'not_cancellable', 'not_retryable', 'too_many_schedules', 'identity_not_ready'],
  413: ['file_too_large', 'image_too_large', 'field_too_large', 'upload_too_large'],
  415: ['multipart_required', 'unsupported_image_type', 'unsupported_charset', 'unsupported_content_encoding'],
  422: ['idempotency_key_reused', 'photo_refused', 'gpu_cost_too_high', 'over_gpu_budget', 'schedule_over_gpu_budget'],
  429: ['rate_limited', 'too_many_streams', 'too_many_failed_auth', 'gpu_budget_exhausted', 'upload_share_busy'],
  500: ['internal_error'],
  503: ['dependency_unavailable', 'server_busy', 'face_check_unavailable'],
} as const;

const ErrorBody = z
  .object({ error: z.object({ code: z.string(), message: z.string(), field: z.string().optional(), index: z.number().int().optional().describe('which of several parts of `field` is at fault, 0 = the first (image_file)') }) })
  .describe('Every error: a stable code, a message for people, and the request field at fault when there is one.');

const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema: z.toJSONSchema(schema, { io: 'output' }) } } });
const image = (description: string) => ({ description, content: { 'image/png': {}, 'image/webp': {}, 'image/jpeg': {} } });
const idParam = { name: 'id', in: 'path', required: true, schema: z.toJSONSchema(JobId) };

function errors(...statuses: (keyof typeof ERROR_CODES)[]) {
  return Object.fromEntries(
    statuses.map((s) => [String(s), json(ErrorBody, `error; code is one of: ${ERROR_CODES[s].join(', ')}`)]),
  );
}

function queryParameters(schema: z.ZodObject) {
  const jsonSchema = z.toJSONSchema(schema, { io: 'input' }) as { properties: Record<string, object>; required?: string[] };
  return Object.entries(jsonSchema.properties).map(([name, s]) => ({ name, in: 'query', required: jsonSchema.required?.includes(name) ?? false, schema: s }));
}

const authErrors = [401, 429] as const;

export function openApiDocument(config: Pick<Config, 'GENERATION_MAX_WAIT_S'>) {
  const generationId = { ...idParam, description: 'a generation id' };
  const paths = {
    '/health': {
      get: { operationId: 'health', summary: 'Real pings of Redis, MongoDB and S3', security: [], responses: { 200: json(HealthView, 'all dependencies answer'), ...errors(503) } },
    },
    '/metrics': {
      get: { operationId: 'metrics', summary: 'Prometheus metrics (operator credentials: ADMIN_TOKEN)', security: [{ admin: [] }], responses: { 200: { description: 'text exposition format', content: { 'text/plain': {} } }, ...errors(401) } },
    },
    '/admin/queue-depths': {
      get: {
        operationId: 'queueDepths',
        summary: "Steps waiting for a worker on each GPU queue (BullMQ's wait list and prioritized set), for an autoscaler (operator credentials: ADMIN_TOKEN)",
        security: [{ admin: [] }],
        responses: { 200: json(z.record(z.string(), z.number().int().min(0)), 'queue name -> steps waiting'), ...errors(401, 429) },
      },
    },
    '/parameters': {
      get: { operationId: 'parameters', summary: 'The portrait vocabulary and its defaults', responses: { 200: { description: 'every choice with its meaning', content: { 'application/json': {} } }, ...errors(...authErrors) } },
    },
    '/jobs': {
      post: {
        operationId: 'createJob',
        summary: 'Submit 1 to 4 reference photos and parameters; the portrait is generated, validated and retried with feedback',
        parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', minLength: 1, maxLength: 255 } }],
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                properties: {
                  image_file: {
                    type: 'array',
                    items: { type: 'string', format: 'binary' },
                    minItems: 1,
                    maxItems: MAX_REFERENCE_PHOTOS,
                    description: `1 to ${MAX_REFERENCE_PHOTOS} JPEG, PNG or WebP photos of the person, one image_file part each: a model that takes several references (FLUX.2 klein) renders from all of them, one that takes one (Kontext) from the first; the identity check compares the portrait with every one (median distance). A refused photo is named by its index (0 = the first)`,
                  },
                  parameters: { type: 'string', description: 'JSON object: ' + JSON.stringify(z.toJSONSchema(PortraitParameters, { io: 'input' })) },
                  webhook_url: { type: 'string', format: 'uri', description: 'where to POST signed events (Standard Webhooks); must resolve to a public address' },
                  webhook_events: { type: 'string', description: `comma-separated, of: ${WEBHOOK_EVENTS.join(', ')} (default: the terminal ones)` },
                  candidates: { type: 'integer', minimum: 1, maximum: 4, default: 1, description: 'images rendered per attempt in one batched call; validate judges each and keeps the best (best of N)' },
                  loras: { type: 'string', description: 'JSON array of identity LoRAs applied in every attempt: ' + JSON.stringify(z.toJSONSchema(LoraSpec, { io: 'input' })) },
                  hf_token: { type: 'string', description: "a private LoRA repo's Hugging Face token: sealed before it is stored, never returned (needs SECRETS_KEY)" },
                  identity_id: { ...z.toJSONSchema(IdentityId), description: 'instead of image_file: a ready identity of yours. Its most typical photos are the references, its LoRA and trigger token go to every render, and the identity check compares the portrait with every photo of it' },
                },
                additionalProperties: false,
              },
            },
          },
        },
        responses: { 202: json(JobAccepted, 'accepted'), 200: json(JobAccepted, 'replayed: this Idempotency-Key already created the job'), ...errors(400, 413, 415, 422, 503, ...authErrors) },
      },
      get: { operationId: 'listJobs', summary: "The caller's jobs, newest first, with cursor pagination", parameters: queryParameters(JobListQuery), responses: { 200: json(JobList, 'one page'), ...errors(400, ...authErrors) } },
    },
    '/generations': {
      post: {
        operationId: 'createGeneration',
        summary: 'Text-to-image with optional per-request LoRAs; waits up to ?wait seconds for the result',
        parameters: [
          { name: 'wait', in: 'query', required: false, schema: { type: 'integer', minimum: 0, maximum: config.GENERATION_MAX_WAIT_S } },
          { name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', minLength: 1, maxLength: 255 } },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(GenerationRequest, { io: 'input' }) } } },
        responses: {
          200: json(GenerationView, 'finished within the wait (or replayed: this Idempotency-Key already created it)'),
          202: json(GenerationView, 'still running: poll GET /generations/{id}'),
          ...errors(400, 413, 422, ...authErrors),
        },
      },
      get: {
        operationId: 'listGenerations',
        summary: "The caller's generations, newest first, with cursor pagination (filter by status)",
        parameters: queryParameters(GenerationListQuery),
        responses: { 200: json(GenerationList, 'one page: generations (as GET /generations/{id}, without base64) and next_cursor'), ...errors(400, ...authErrors) },
      },
    },
    '/generations/{id}': {
      get: {
        operationId: 'getGeneration',
        summary: 'Status and images (S3 keys, presigned URLs; base64 with ?include=base64)',
        parameters: [generationId, { name: 'include', in: 'query', required: false, schema: { type: 'string', enum: ['base64'] } }],
        responses: { 200: json(GenerationView, 'the generation'), ...errors(400, 404, ...authErrors) },
      },
      delete: {
        operationId: 'deleteGeneration',
        summary: "Erase the generation (cancelled first if it runs): its images, records, webhook deliveries and queue data. Images in the caller's own bucket stay",
        parameters: [generationId],
        responses: { 204: { description: 'erased: afterwards it answers 404 and its Idempotency-Key can be used again' }, ...errors(400, 404, ...authErrors) },
      },
    },
    '/generations/{id}/deliveries': {
      get: { operationId: 'generationWebhookDeliveries', summary: 'Every webhook delivery attempt of the generation', parameters: [{ ...idParam, description: 'a generation id' }], responses: { 200: json(deliveryList('generation'), 'attempts, oldest first'), ...errors(400, 404, ...authErrors) } },
    },
    '/generations/{id}/events': {
      get: {
        operationId: 'generationEvents',
        summary: 'Server-Sent Events: running, denoising progress, then the terminal status; resume with Last-Event-ID',
        parameters: [generationId, { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
        responses: { 200: { description: 'an event stream (event: status | progress)', content: { 'text/event-stream': {} } }, ...errors(400, 404, 429, 503, ...authErrors) },
      },
    },
    '/generations/{id}/cancel': {
      post: { operationId: 'cancelGeneration', summary: 'Cancel a pending or running generation', parameters: [generationId], responses: { 202: json(GenerationCancelling, 'cancelling'), ...errors(400, 404, 409, ...authErrors) } },
    },
    '/batches': {
      post: {
        operationId: 'createBatch',
        summary: 'A one-off batch: a list of generations, or every photo under an inbox prefix as a portrait job (fan-out/fan-in)',
        parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', minLength: 1, maxLength: 255 } }],
        requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(BatchRequest, { io: 'input' }) } } },
        responses: {
          202: json(BatchAccepted, 'accepted: follow GET /batches/{id}'),
          200: json(BatchAccepted, 'replayed: this Idempotency-Key already created the batch'),
          ...errors(400, 413, 422, ...authErrors),
        },
      },
      get: { operationId: 'listBatches', summary: "The caller's batches, newest first (filter by schedule_id)", parameters: queryParameters(BatchListQuery), responses: { 200: json(BatchList, 'one page'), ...errors(400, ...authErrors) } },
    },
    '/batches/{id}': {
      get: {
        operationId: 'getBatch',
        summary: 'A batch: counts per state, every child with its status, photos turned down, and the summary once done',
        parameters: [{ ...idParam, description: 'a batch id' }],
        responses: { 200: json(BatchView, 'the batch'), ...errors(400, 404, ...authErrors) },
      },
      delete: {
        operationId: 'deleteBatch',
        summary: 'Erase the batch with every child it made (cancelled first if they run), and the inbox photos they were made from',
        parameters: [{ ...idParam, description: 'a batch id' }],
        responses: { 204: { description: 'erased: afterwards it answers 404 and its Idempotency-Key can be used again' }, ...errors(400, 404, ...authErrors) },
      },
    },
    '/batches/{id}/events': {
      get: {
        operationId: 'batchEvents',
        summary: 'Server-Sent Events: running (with the number of children), then completed with the counts; resume with Last-Event-ID',
        parameters: [{ ...idParam, description: 'a batch id' }, { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
        responses: { 200: { description: 'an event stream (event: status)', content: { 'text/event-stream': {} } }, ...errors(400, 404, 429, 503, ...authErrors) },
      },
    },
    '/batches/{id}/deliveries': {
      get: { operationId: 'batchWebhookDeliveries', summary: 'Every webhook delivery attempt of the batch', parameters: [{ ...idParam, description: 'a batch id' }], responses: { 200: json(deliveryList('batch'), 'attempts, oldest first'), ...errors(400, 404, ...authErrors) } },
    },
    '/batches/{id}/cancel': {
      post: { operationId: 'cancelBatch', summary: 'Stop the fan-out and cancel every child that has not ended', parameters: [{ ...idParam, description: 'a batch id' }], responses: { 202: json(BatchCancelling, 'cancelling'), ...errors(400, 404, 409, ...authErrors) } },
    },
    '/schedules': {
      post: {
        operationId: 'createSchedule',
        summary: 'Run a batch on a cron pattern in a time zone; inbox photos are taken once each (by key and ETag)',
        requestBody: { required: true, content: { 'application/json': { schema: z.toJSONSchema(ScheduleRequest, { io: 'input' }) } } },
        responses: { 201: json(ScheduleView, 'created, with its next run'), ...errors(400, 409, 413, 422, ...authErrors) },
      },
      get: { operationId: 'listSchedules', summary: "The caller's schedules", responses: { 200: json(ScheduleList, 'all of them'), ...errors(...authErrors) } },
    },
    '/schedules/{id}': {
      get: { operationId: 'getSchedule', summary: 'A schedule with its next and last run', parameters: [{ ...idParam, description: 'a schedule id' }], responses: { 200: json(ScheduleView, 'the schedule'), ...errors(400, 404, ...authErrors) } },
      delete: { operationId: 'deleteSchedule', summary: 'Stop the schedule (batches it started run on)', parameters: [{ ...idParam, description: 'a schedule id' }], responses: { 204: { description: 'deleted' }, ...errors(400, 404, ...authErrors) } },
    },
    '/identities': {
      post: {
        operationId: 'createIdentity',
        summary: `Learn a person from ${IDENTITY_PHOTOS.min} to ${IDENTITY_PHOTOS.max} photos: each is checked (decoded, exactly one face of adequate size) before anything is kept, then the photos are framed and captioned, a LoRA is trained and evaluated`,
        parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', minLength: 1, maxLength: 255 } }],
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                required: ['photos', 'name'],
                properties: {
                  photos: { type: 'array', items: { type: 'string', format: 'binary' }, minItems: IDENTITY_PHOTOS.min, maxItems: IDENTITY_PHOTOS.max, description: 'JPEG, PNG or WebP photos of the same person, one photos part each; a refused one is named by its index (0 = the first) and reason' },
                  name: { type: 'string', minLength: 1, maxLength: 100, description: 'a label for the person' },
                  training: { type: 'string', description: 'JSON object: ' + JSON.stringify(z.toJSONSchema(IdentityTrainingOptions, { io: 'input' })) },
                  webhook_url: { type: 'string', format: 'uri', description: 'where to POST signed events (identity.ready, identity.failed, identity.cancelled)' },
                  webhook_events: { type: 'string', description: `comma-separated, of: ${WEBHOOK_EVENTS.filter((e) => e.startsWith('identity.')).join(', ')}` },
                },
                additionalProperties: false,
              },
            },
          },
        },
        responses: { 202: json(IdentityAccepted, 'accepted: follow GET /identities/{id}'), 200: json(IdentityAccepted, 'replayed: this Idempotency-Key already created it'), ...errors(400, 413, 415, 422, 503, ...authErrors) },
      },
      get: { operationId: 'listIdentities', summary: "The caller's identities, newest first, with cursor pagination (filter by status)", parameters: queryParameters(IdentityListQuery), responses: { 200: json(IdentityList, 'one page'), ...errors(400, ...authErrors) } },
    },
    '/identities/photo-check': {
      post: {
        operationId: 'checkIdentityPhoto',
        summary: 'The face check POST /identities applies, for one photo, before uploading a set (nothing is kept)',
        requestBody: { required: true, content: { 'multipart/form-data': { schema: { type: 'object', required: ['photo'], properties: { photo: { type: 'string', format: 'binary' } }, additionalProperties: false } } } },
        responses: { 200: json(PhotoCheckView, 'the verdict'), ...errors(400, 413, 415, 503, ...authErrors) },
      },
    },
    '/identities/{id}': {
      get: { operationId: 'getIdentity', summary: 'An identity: its status, live training progress (step, loss, ETA), the trained LoRA and the evaluation (likeness with and without it)', parameters: [{ ...idParam, description: 'an identity id' }], responses: { 200: json(IdentityView, 'the identity'), ...errors(400, 404, ...authErrors) } },
      delete: {
        operationId: 'deleteIdentity',
        summary: 'Erase the identity (its training cancelled first): its photos, framed crops, captions, face embeddings, checkpoints, LoRA and evaluation renders. Portraits already made stay with their jobs',
        parameters: [{ ...idParam, description: 'an identity id' }],
        responses: { 204: { description: 'erased: afterwards it answers 404 and its Idempotency-Key can be used again' }, ...errors(400, 404, ...authErrors) },
      },
    },
    '/identities/{id}/photos/{index}/image': {
      get: {
        operationId: 'getIdentityPhoto',
        summary: 'One of the identity\'s photos as sent (upright, metadata stripped)',
        parameters: [{ ...idParam, description: 'an identity id' }, { name: 'index', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        responses: { 200: image('the photo'), ...errors(400, 404, ...authErrors) },
      },
    },
    '/identities/{id}/evaluation/{index}/image': {
      get: {
        operationId: 'getIdentityEvaluationRender',
        summary: 'One render of the evaluation (in the order of evaluation.renders: each held-out portrait without, then with the LoRA)',
        parameters: [{ ...idParam, description: 'an identity id' }, { name: 'index', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
        responses: { 200: image('the render'), ...errors(400, 404, ...authErrors) },
      },
    },
    '/identities/{id}/cancel': {
      post: { operationId: 'cancelIdentity', summary: 'Stop learning the identity: a queued step never starts, training stops between two steps', parameters: [{ ...idParam, description: 'an identity id' }], responses: { 202: json(IdentityAccepted, 'cancelling'), ...errors(400, 404, 409, ...authErrors) } },
    },
    '/identities/{id}/events': {
      get: {
        operationId: 'identityEvents',
        summary: 'Server-Sent Events: each status, the trainer\'s progress (step, loss), then ready, failed or cancelled; resume with Last-Event-ID',
        parameters: [{ ...idParam, description: 'an identity id' }, { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
        responses: { 200: { description: 'an event stream (event: status | progress)', content: { 'text/event-stream': {} } }, ...errors(400, 404, 429, 503, ...authErrors) },
      },
    },
    '/identities/{id}/deliveries': {
      get: { operationId: 'identityWebhookDeliveries', summary: 'Every webhook delivery attempt of the identity', parameters: [{ ...idParam, description: 'an identity id' }], responses: { 200: json(deliveryList('identity'), 'attempts, oldest first'), ...errors(400, 404, ...authErrors) } },
    },
    '/jobs/{id}': {
      get: { operationId: 'getJob', summary: 'A job with every attempt, step and verdict', parameters: [idParam], responses: { 200: json(JobView, 'the job'), ...errors(400, 404, ...authErrors) } },
      delete: {
        operationId: 'deleteJob',
        summary: 'Erase the job (cancelled first if it runs): its reference photo and the inbox photo it came from, every image, report, event, webhook delivery and queue record',
        parameters: [idParam],
        responses: { 204: { description: 'erased: afterwards it answers 404 and its Idempotency-Key can be used again' }, ...errors(400, 404, ...authErrors) },
      },
    },
    '/jobs/{id}/cancel': {
      post: { operationId: 'cancelJob', summary: 'Cancel a pending or running job', parameters: [idParam], responses: { 202: json(JobAccepted, 'cancelling'), ...errors(400, 404, 409, ...authErrors) } },
    },
    '/jobs/{id}/retry': {
      post: { operationId: 'retryJob', summary: 'Start a new attempt cycle for a failed or failed_validation job (history kept)', parameters: [idParam], responses: { 202: json(JobAccepted, 'retrying'), ...errors(400, 404, 409, 422, ...authErrors) } },
    },
    '/jobs/{id}/deliveries': {
      get: { operationId: 'jobWebhookDeliveries', summary: 'Every webhook delivery attempt of the job', parameters: [idParam], responses: { 200: json(deliveryList('job'), 'attempts, oldest first'), ...errors(400, 404, ...authErrors) } },
    },
    '/jobs/{id}/events': {
      get: {
        operationId: 'jobEvents',
        summary: 'Server-Sent Events: step transitions, generation progress, then the terminal status; resume with Last-Event-ID',
        parameters: [idParam, { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } }],
        responses: { 200: { description: 'an event stream (event: status | step | progress)', content: { 'text/event-stream': {} } }, ...errors(400, 404, 429, 503, ...authErrors) },
      },
    },
    '/jobs/{id}/result': { get: { operationId: 'getResult', summary: 'The accepted portrait', parameters: [idParam], responses: { 200: image('the image'), ...errors(400, 404, 409, ...authErrors) } } },
    '/jobs/{id}/report': { get: { operationId: 'getReport', summary: 'The failure analysis of a failed_validation job', parameters: [idParam], responses: { 200: json(JobReportView, 'the report'), ...errors(400, 404, 409, ...authErrors) } } },
    '/jobs/{id}/attempts/{attempt}/image': {
      get: {
        operationId: 'getAttemptImage',
        summary: "One attempt's image (kept for failed_validation jobs too)",
        parameters: [idParam, { name: 'attempt', in: 'path', required: true, schema: { type: 'integer', minimum: 1 } }],
        responses: { 200: image('the image'), ...errors(400, 404, 409, ...authErrors) },
      },
    },
  };
  return {
    openapi: '3.1.0',
    info: { title: 'APEX Portraits API', version: '0.1.0', description: 'Portrait generation with machine validation. Errors share one shape: {error: {code, message, field?}}.' },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: {
        apiKey: { type: 'http', scheme: 'bearer', description: 'an API key from `npm run keys -- create --tenant NAME`' },
        admin: { type: 'http', scheme: 'basic', description: 'operators: any user name, ADMIN_TOKEN as the password' },
      },
    },
    security: [{ apiKey: [] }],
    paths,
  };
}
