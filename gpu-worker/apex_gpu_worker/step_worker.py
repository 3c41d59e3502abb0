"""One BullMQ worker per GPU step queue, wrapped once with what every step needs: the contract
check of its payload and of its result, and the job id on every log line."""

import logging
from collections.abc import Awaitable, Callable

from bullmq import Job, Worker

from .contracts import check_input, check_result
from .logs import current_job
from .settings import WorkerSettings

StepProcessor = Callable[[dict, Job], Awaitable[dict]]

log = logging.getLogger("apex_gpu_worker")


def start_step_worker(step: str, processor: StepProcessor, settings: WorkerSettings) -> Worker:
    async def process(job: Job, token: str) -> dict:
        current_job.set({"jobId": (job.data or {}).get("jobId"), "bullJobId": job.id, "queue": step})
        payload = check_input(settings.contracts_dir, step, job.data)
        log.info("step started")
        result = check_result(settings.contracts_dir, step, await processor(payload, job))
        log.info("step finished")
        return result

    return Worker(
        step,
        process,
        {"connection": settings.redis_url, "prefix": settings.queue_prefix, "concurrency": settings.concurrency},
    )
