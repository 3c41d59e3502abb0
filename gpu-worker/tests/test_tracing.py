import asyncio
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from bullmq import Queue
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from apex_gpu_worker.step_worker import start_step_worker
from apex_gpu_worker.telemetry import default_tracer, start_tracing
from support.queue_runs import wait_until_done
from test_step_worker import VALID, answer

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
ORCHESTRATOR_SPAN = "00f067aa0ba902b7"
CARRIED = {"traceparent": f"00-{TRACE_ID}-{ORCHESTRATOR_SPAN}-01"}


async def run_traced(settings, processor, data, tracer=None):
    """One job through the real `prompt` queue with the wrapped worker; returns its final state."""
    queue = Queue("prompt", {"connection": settings.redis_url, "prefix": settings.queue_prefix})
    worker = start_step_worker("prompt", processor, settings, tracer=tracer)
    try:
        job = await queue.add("prompt", data, {"attempts": 1})
        _, state = await wait_until_done(queue, job.id)
        return state
    finally:
        await worker.close()
        await queue.close()


def in_memory_tracer():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


async def test_a_step_continues_the_trace_its_payload_carries(settings):
    tracer, exporter = in_memory_tracer()
    assert await run_traced(settings, answer, {**VALID, "trace": CARRIED}, tracer) == "completed"
    [span] = exporter.get_finished_spans()
    assert span.name == "step prompt"
    assert (format(span.context.trace_id, "032x"), format(span.parent.span_id, "016x")) == (TRACE_ID, ORCHESTRATOR_SPAN)
    assert span.attributes["apex.job_id"] == VALID["jobId"]
    assert span.status.status_code == StatusCode.UNSET


async def test_a_failing_step_is_an_error_span_and_without_a_trace_it_starts_one(settings):
    async def broken(payload, job, signal):
        raise RuntimeError("GPU fell off the bus")

    tracer, exporter = in_memory_tracer()
    assert await run_traced(settings, broken, VALID, tracer) == "failed"
    [span] = exporter.get_finished_spans()
    assert span.parent is None
    assert span.status.status_code == StatusCode.ERROR
    assert any(e.name == "exception" and "GPU fell off the bus" in e.attributes["exception.message"] for e in span.events)


async def test_with_an_endpoint_configured_spans_are_exported_over_otlp_http(settings):
    received: list[tuple[str, str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, self.headers["content-type"], self.rfile.read(int(self.headers["content-length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    provider = start_tracing(f"http://127.0.0.1:{server.server_port}", "apex-test")
    try:
        assert await run_traced(settings, answer, {**VALID, "trace": CARRIED}, default_tracer()) == "completed"
        await asyncio.to_thread(provider.force_flush)
    finally:
        provider.shutdown()
        server.shutdown()
    path, content_type, body = received[0]
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    spans = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert [(s.name, s.trace_id.hex(), s.parent_span_id.hex()) for s in spans] == [("step prompt", TRACE_ID, ORCHESTRATOR_SPAN)]
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "apex-test"
