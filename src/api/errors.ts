import type { ErrorRequestHandler, RequestHandler } from 'express';
import { InvalidReferenceImage } from '../flows/portrait/referenceImage';
import { logger } from '../logger';

/** Every error response has this shape: {error: {code, message, field?}}. */
export class ApiError extends Error {
  name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** HTTP status of each reason a photo is refused. */
const REFERENCE_IMAGE_STATUS: Record<InvalidReferenceImage['code'], number> = {
  unsupported_image_type: 415,
  image_too_large: 413,
  unreadable_image: 400,
  image_too_small: 400,
};

/** A refused photo as the API answers it: the upload field (image_file, an identity's photos), and with several photos which one (0 = the first). */
export function referenceImageRefusal(err: InvalidReferenceImage, index?: number, field = 'image_file'): ApiError {
  return new ApiError(REFERENCE_IMAGE_STATUS[err.code], err.code, err.message, field, index === undefined ? undefined : { index });
}

/** Which dependency an error says is unreachable (a 503 the client may retry), if any. */
function unavailableDependency(err: { name?: string; message?: string }): string | undefined {
  const text = `${err?.name ?? ''} ${err?.message ?? ''}`;
  if (/Mongo(ose)?(ServerSelection|Network|NotConnected|PoolCleared|Topology)|before initial connection|Client must be connected/.test(text)) return 'mongodb';
  if (/MaxRetriesPerRequest|Connection is closed|ECONNREFUSED.*6379|Redis is not connected|enableOfflineQueue/i.test(text)) return 'redis';
  return undefined;
}

/**
 * A body the JSON parser (body-parser) refused before reading it, as the 4xx it is, naming the header
 * at fault; undefined for its other errors (a 400 or 413 handled below, or none of its).
 */
function refusedBody(err: { type?: unknown; charset?: unknown; encoding?: unknown }): ApiError | undefined {
  if (err?.type === 'charset.unsupported') {
    return new ApiError(415, 'unsupported_charset', `charset "${String(err.charset)}" is not supported: send JSON as UTF-8 (Content-Type: application/json)`, 'content-type');
  }
  if (err?.type === 'encoding.unsupported') {
    return new ApiError(415, 'unsupported_content_encoding', `Content-Encoding "${String(err.encoding)}" is not supported: send the body as it is, or with gzip, deflate or br`, 'content-encoding');
  }
  return undefined;
}

export const notFound: RequestHandler = (req, _res, next) =>
  next(new ApiError(404, 'route_not_found', `no route for ${req.method} ${req.path}; the API's routes are listed at /docs`));

export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  let error: ApiError;
  const dependency = unavailableDependency(err);
  const bodyRefusal = refusedBody(err);
  if (err instanceof ApiError) {
    error = err;
  } else if (err instanceof InvalidReferenceImage) {
    error = referenceImageRefusal(err);
  } else if (bodyRefusal) {
    error = bodyRefusal;
  } else if (err?.type === 'entity.parse.failed' || err?.type === 'entity.too.large' || err?.status === 400) {
    error = new ApiError(err.status ?? 400, 'malformed_request', err.message);
  } else if (err?.expose === true && err.status >= 400 && err.status < 500) {
    // Any other client error Express or a parser raises (http-errors marks those it may show): its own status, not a 500.
    error = new ApiError(err.status, 'malformed_request', err.message);
  } else if (typeof err?.message === 'string' && /Multipart|Unexpected end of form|Boundary/i.test(err.message)) {
    error = new ApiError(400, 'malformed_multipart', err.message);
  } else if (dependency) {
    logger.warn('dependency unavailable', { method: req.method, path: req.path, dependency, error: err?.message });
    res.setHeader('Retry-After', '5');
    error = new ApiError(503, 'dependency_unavailable', `${dependency} is unavailable; retry shortly`, dependency);
  } else {
    logger.error('unhandled error', { method: req.method, path: req.path, error: err?.message, stack: err?.stack });
    error = new ApiError(500, 'internal_error', 'internal error');
  }
  const { status, code, message, field, details } = error;
  res.status(status).json({ error: { code, message, ...(field ? { field } : {}), ...details } });
};
