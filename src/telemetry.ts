import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import type { Config } from './config';

/** W3C trace context as it travels in job data (validated by flows/contracts/common.ts TraceCarrier). */
export type TraceCarrier = { traceparent: string; tracestate?: string };

/**
 * OpenTelemetry traces, off by default: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans go there over
 * OTLP/HTTP. A trace starts at the API request and follows the work through job data (a W3C
 * `traceparent` in `trace`): orchestrator runs, and the Python GPU steps, which continue it.
 * Off, every function here is a no-op and no job data carries a trace.
 */
export type Tracing = { forceFlush(): Promise<void>; shutdown(): Promise<void> };

const NO_TRACING: Tracing = { forceFlush: async () => undefined, shutdown: async () => undefined };

export function startTracing(config: Pick<Config, 'OTEL_EXPORTER_OTLP_ENDPOINT' | 'OTEL_SERVICE_NAME'>, component: string): Tracing {
  if (!config.OTEL_EXPORTER_OTLP_ENDPOINT) return NO_TRACING;
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.OTEL_SERVICE_NAME, 'service.component': component }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${config.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/traces` }) })],
  });
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  return {
    forceFlush: () => provider.forceFlush(),
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

export const tracer = () => trace.getTracer('apex-portraits');

/** The active trace as a carrier for job data; undefined when tracing is off. */
export function currentTraceCarrier(): TraceCarrier | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? (carrier as TraceCarrier) : undefined;
}

/** BullMQ's way of parking a job until its children finish: control flow, not a failure. */
const isFlowControl = (err: unknown) => (err as Error)?.name === 'WaitingChildrenError';

/** Runs one job's processing in a span that continues the trace its data carries. */
export function inJobSpan<T>(name: string, carrier: TraceCarrier | undefined, attributes: Attributes, run: () => Promise<T>): Promise<T> {
  const parent = carrier ? propagation.extract(context.active(), carrier) : context.active();
  return tracer().startActiveSpan(name, { kind: SpanKind.CONSUMER, attributes }, parent, async (span) => {
    try {
      return await run();
    } catch (err) {
      if (isFlowControl(err)) {
        span.setAttribute('bullmq.waiting_children', true);
      } else {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.message });
      }
      throw err;
    } finally {
      span.end();
    }
  });
}
