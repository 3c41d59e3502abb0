"""One BullMQ worker per GPU step queue, wrapped once with what every step needs: the contract
check of its payload and of its result, cancellation, the job id on every log line, a span
continuing the job's trace, and a coded failure's code in the failed job's reason
(contracts/step_errors.py)."""

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bullmq import AbortSignal, Job, UnrecoverableError, Worker
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from .cancellation import CancellationListener
from .contracts.payloads import StepName
from .contracts.step_errors import StepCancelled, StepError, check_step_error_codes, failure_reason
from .contracts.steps import step_catalogue
from .contracts.validation import check_input, check_result
from .logs import current_job
from .settings import WorkerSettings
from .telemetry import default_tracer, parent_context

Payload = TypeVar("Payload")
Result = TypeVar("Result")
# A step's work: (its payload, checked against the contract, the BullMQ job, the cancel signal) -> its
# result; each step declares its types from contracts/payloads.py, e.g. StepProcessor[PromptInput, PromptResult].
StepProcessor = Callable[[Payload, Job, AbortSignal], Awaitable[Result]]

log = logging.getLogger("apex_gpu_worker")


def owner_id(data: dict) -> str | None:
    """The resource a step works for, by which it is cancelled and its events are logged: a job's
    (portraits, generations) or an identity's."""
    return data.get("jobId") or data.get("identityId")


def start_step_worker(
    queue: str,
    processor: StepProcessor,
    settings: WorkerSettings,
    cancellations: CancellationListener | None = None,
    tracer: trace.Tracer | None = None,
) -> Worker:
    worker: Worker
    tracer = tracer or default_tracer()
    step: StepName = step_catalogue(settings.contracts_dir).step_of(queue)  # whose contract the queue's payloads follow
    check_step_error_codes(settings.contracts_dir)

    async def process(job: Job, token: str, signal: AbortSignal) -> dict:
        data = job.data or {}
        attributes = {"bullmq.queue": queue, "bullmq.job_id": str(job.id), "apex.job_id": str(owner_id(data)), "apex.attempt": str(data.get("attempt"))}
        # Failures are recorded on the span (exception event, error status) by the context manager.
        with tracer.start_as_current_span(f"step {step}", context=parent_context(data.get("trace")), kind=SpanKind.CONSUMER, attributes=attributes) as span:
            try:
                result = await run(job, signal)
            except StepError as err:
                # BullMQ stores str(error) as the failed reason: the code goes first, for the orchestrator.
                log.warning("step failed", extra={"fields": {"code": err.code, "detail": str(err)}})
                raise UnrecoverableError(failure_reason(err)) from err
            for name, value in (result.get("timings") or {}).items():
                span.set_attribute(f"apex.timings.{name}", value)
            return result

    async def run(job: Job, signal: AbortSignal) -> dict:
        job_id = owner_id(job.data or {})
        current_job.set({"jobId": job_id, "bullJobId": job.id, "queue": queue})
        payload = check_input(settings.contracts_dir, step, job.data)
        if cancellations and await cancellations.is_cancelled(job_id):
            raise StepCancelled("cancelled by request")
        if cancellations:
            cancellations.track(job_id, worker, job.id)
        try:
            log.info("step started")
            result = check_result(settings.contracts_dir, step, await processor(payload, job, signal))
        finally:
            if cancellations:
                cancellations.untrack(job_id, worker, job.id)
        if signal.aborted:
            raise StepCancelled("cancelled by request")
        log.info("step finished")
        return result

    worker = Worker(
        queue,
        process,
        {"connection": settings.redis_url, "prefix": settings.queue_prefix, "concurrency": settings.concurrency,
         "lockDuration": int(settings.lock_duration_s * 1000), "stalledInterval": int(settings.stalled_interval_s * 1000)},
    )
    return worker
