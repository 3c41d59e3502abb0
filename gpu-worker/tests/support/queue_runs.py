"""Runs step jobs through a real queue and waits for them to end."""

import asyncio

from bullmq import Job, Queue

JOB_ID = "65a1b2c3d4e5f60718293a4b"
PARAMETERS = {
    "purpose": "professional_linkedin",
    "attire": "business_casual",
    "background": "neutral_studio",
    "vibe": "confident",
    "lighting": "studio_softbox",
    "resolution": "1k",
}


async def wait_until_done(queue: Queue, job_id: str, timeout_s: float = 120) -> tuple[Job, str]:
    for _ in range(int(timeout_s / 0.05)):
        state = await queue.getJobState(job_id)
        if state in ("completed", "failed"):
            return await queue.getJob(job_id), state
        await asyncio.sleep(0.05)
    raise TimeoutError(f"job {job_id} still {state} after {timeout_s}s")


async def run_step(settings, step: str, data: dict, opts: dict | None = None) -> tuple[Job, str]:
    queue = Queue(step, {"connection": settings.redis_url, "prefix": settings.queue_prefix})
    try:
        job = await queue.add(step, data, opts or {"attempts": 1})
        return await wait_until_done(queue, job.id)
    finally:
        await queue.close()
