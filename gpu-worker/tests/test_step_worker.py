import asyncio

from bullmq import Queue

from apex_gpu_worker.step_worker import start_step_worker
from support.queue_runs import JOB_ID, PARAMETERS

VALID = {
    "jobId": JOB_ID,
    "attempt": 1,
    "parameters": PARAMETERS,
    "referenceImageKey": f"jobs/{JOB_ID}/reference.jpg",
    "previous": None,
}


async def run_one(settings, processor, data):
    """Adds one job to the real `prompt` queue, lets the wrapped worker take it, returns the job."""
    queue = Queue("prompt", {"connection": settings.redis_url, "prefix": settings.queue_prefix})
    calls = []

    async def recording(payload, job, signal):
        calls.append(payload)
        return await processor(payload, job, signal)

    worker = start_step_worker("prompt", recording, settings)
    job = await queue.add("prompt", data, {"attempts": 3})
    for _ in range(200):
        state = await queue.getJobState(job.id)
        if state in ("completed", "failed"):
            break
        await asyncio.sleep(0.05)
    finished = await queue.getJob(job.id)
    await worker.close()
    await queue.close()
    return finished, state, calls


async def answer(payload, job, signal):
    return {"prompt": f"portrait for attempt {payload['attempt']}"}


async def test_a_valid_payload_is_processed_and_its_result_returned(settings):
    job, state, calls = await run_one(settings, answer, VALID)
    assert state == "completed"
    assert job.returnvalue == {"prompt": "portrait for attempt 1"}
    assert calls == [VALID]


async def test_an_invalid_payload_fails_permanently_before_any_work_naming_the_field(settings):
    job, state, calls = await run_one(settings, answer, {**VALID, "attempt": 0})
    assert state == "failed"
    assert job.attemptsMade == 1  # not retried: UnrecoverableError
    assert "invalid prompt input: attempt" in job.failedReason
    assert calls == []


async def test_a_result_that_breaks_the_contract_fails_the_step(settings):
    async def wrong(payload, job, signal):
        return {"text": "no prompt field"}

    job, state, _ = await run_one(settings, wrong, VALID)
    assert state == "failed"
    assert "invalid prompt result" in job.failedReason
