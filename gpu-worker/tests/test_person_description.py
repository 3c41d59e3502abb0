"""The prompt step learns what the photo tells once per job: the first attempt looks at the photo
and describes the person, the job's later attempts write from that description and their feedback,
without the photo. Through a real queue, the real S3 server and the tiny in-process VLM, with a spy
on what the VLM is shown."""

import pytest
from PIL import Image
from skimage import data

from apex_gpu_worker.runtime import WorkerRuntime, build_vlm
from apex_gpu_worker.steps.prompt import PersonDescriptions, prompt_step
from support.counting_vlm import CountingVlm
from support.images import png
from support.queue_runs import JOB_ID, PARAMETERS, run_step

REFERENCE = f"jobs/{JOB_ID}/reference.png"
OTHER_JOB = "65a1b2c3d4e5f60718293a4c"


@pytest.fixture
async def prompt_worker(settings, store):
    store.put_bytes(REFERENCE, png(Image.fromarray(data.astronaut())), "image/png")
    vlm, descriptions = CountingVlm(build_vlm(settings)), PersonDescriptions()
    runtime = await WorkerRuntime.start(settings, {"prompt": prompt_step(settings, store, vlm, descriptions)})
    yield vlm, descriptions
    await runtime.stop()


async def attempt(settings, number: int, previous: dict | None, job_id: str = JOB_ID) -> dict:
    job, state = await run_step(settings, "prompt", {"jobId": job_id, "attempt": number, "parameters": PARAMETERS,
                                                     "referenceImageKey": REFERENCE, "previous": previous})
    assert state == "completed", job.failedReason
    return job.returnvalue


async def test_the_person_is_described_once_for_three_attempts_and_later_ones_add_the_feedback(settings, prompt_worker):
    vlm, descriptions = prompt_worker
    first = await attempt(settings, 1, None)
    second = await attempt(settings, 2, {"prompt": first["prompt"], "feedback": "make the light softer"})
    await attempt(settings, 3, {"prompt": second["prompt"], "feedback": "plain grey background"})
    assert descriptions.computed == 1
    assert [call["images"] for call in vlm.calls] == [[1], [0], [0]]  # the photo is shown to the first attempt only
    subject = descriptions.get((JOB_ID, REFERENCE))
    later = [call["instructions"][0] for call in vlm.calls[1:]]
    assert all(subject in instruction for instruction in later)
    assert "make the light softer" in later[0] and "plain grey background" in later[1]
    assert all(result["prompt"] for result in (first, second))


async def test_another_job_is_described_from_its_own_photo(settings, prompt_worker):
    vlm, descriptions = prompt_worker
    await attempt(settings, 1, None)
    await attempt(settings, 1, None, job_id=OTHER_JOB)
    assert descriptions.computed == 2 and [call["images"] for call in vlm.calls] == [[1], [1]]


def test_descriptions_are_bounded_least_recently_used_first_out():
    descriptions = PersonDescriptions(capacity=2)
    descriptions.put(("a", "k"), "one")
    descriptions.put(("b", "k"), "two")
    assert descriptions.get(("a", "k")) == "one"  # now the most recent
    descriptions.put(("c", "k"), "three")
    assert [descriptions.get((job, "k")) for job in "abc"] == ["one", None, "three"]
