import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { RequestHandler } from 'express';
import { tracer } from '../telemetry';

/**
 * One server span per request (a no-op while tracing is off); the handlers run inside it, so the
 * jobs they submit carry its trace. Named by route pattern once it is known, never by raw path.
 */
export const requestSpans: RequestHandler = (req, res, next) => {
  tracer().startActiveSpan(req.method, { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'url.path': req.path } }, (span) => {
    res.on('finish', () => {
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : undefined;
      if (route) span.updateName(`${req.method} ${route}`).setAttribute('http.route', route);
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    next();
  });
};
