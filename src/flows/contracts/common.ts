import { z } from 'zod';
import type { TraceCarrier as Carrier } from '../../telemetry';

/** A Job document id (MongoDB ObjectId, hex): the public job id too. */
export const JobId = z.string().regex(/^[0-9a-f]{24}$/, 'must be a 24-character hex job id');
/** An Identity document id (MongoDB ObjectId, hex): the public identity id too. */
export const IdentityId = z.string().regex(/^[0-9a-f]{24}$/, 'must be a 24-character hex identity id');
export const AttemptNumber = z.number().int().min(1).max(10);
/** Object keys in the deployment's bucket; images travel between steps only as keys. */
export const S3Key = z.string().min(1).max(1024).regex(/^[A-Za-z0-9!_.*'()/-]+$/, 'must be a safe S3 object key');

/** Photos of the person a portrait job renders from: BFL documents up to 4 references for FLUX.2 klein. */
export const MAX_REFERENCE_PHOTOS = 4;
/**
 * Every reference photo of a portrait job, in upload order; the first is also `referenceImageKey`,
 * which state and step payloads written before several photos carry alone.
 */
export const ReferenceImageKeys = z.array(S3Key).min(1).max(MAX_REFERENCE_PHOTOS);

/** W3C trace context carried in job data when tracing is on: the shape src/telemetry.ts defines, checked. */
export const TraceCarrier = z.strictObject({
  traceparent: z.string().regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/),
  tracestate: z.string().max(512).optional(),
}) satisfies z.ZodType<Carrier>;
export type TraceCarrier = Carrier;
