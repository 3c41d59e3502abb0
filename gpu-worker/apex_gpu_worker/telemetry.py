"""OpenTelemetry traces, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set (the variable the TypeScript
processes read too). Each step runs in a span that continues the trace the orchestrator put in its
payload (`trace.traceparent`, W3C trace context), so one trace runs from the API request to here."""

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACER_NAME = "apex_gpu_worker"
_propagator = TraceContextTextMapPropagator()


def start_tracing(endpoint: str | None, service_name: str):
    """Installs an OTLP/HTTP exporter as the process's tracer provider; returns it (to flush on
    shutdown), or None when no endpoint is configured."""
    if not endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name, "service.component": "gpu-worker"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")))
    trace.set_tracer_provider(provider)
    return provider


def default_tracer() -> trace.Tracer:
    """The process's tracer: a no-op until start_tracing installed a provider."""
    return trace.get_tracer(TRACER_NAME)


def parent_context(carrier: object) -> Context | None:
    """The trace context a payload carries, if any."""
    if not isinstance(carrier, Mapping) or "traceparent" not in carrier:
        return None
    return _propagator.extract(carrier={k: str(v) for k, v in carrier.items()})
