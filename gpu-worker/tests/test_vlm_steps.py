"""prompt, validate and report end to end through real queues, with the tiny in-process VLM and the
images in the real S3 server."""

import io

import pytest
from PIL import Image
from skimage import data

from apex_gpu_worker.runtime import WorkerRuntime, build_processors
from support.queue_runs import JOB_ID, PARAMETERS, run_step

REFERENCE = f"jobs/{JOB_ID}/reference.png"


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
async def vlm_worker(settings, store):
    store.put_bytes(REFERENCE, png(Image.fromarray(data.astronaut())), "image/png")
    store.put_bytes(f"jobs/{JOB_ID}/coffee.png", png(Image.fromarray(data.coffee())), "image/png")
    runtime = await WorkerRuntime.start(settings, build_processors(settings, ("prompt", "validate", "report")))
    yield runtime
    await runtime.stop()


def validate_payload(image_key: str | list[str], width: int, height: int) -> dict:
    keys = image_key if isinstance(image_key, list) else [image_key]
    return {"jobId": JOB_ID, "attempt": 1, "parameters": PARAMETERS, "referenceImageKey": REFERENCE, "imageKeys": keys,
            "prompt": "a portrait", "expectedWidth": width, "expectedHeight": height}


async def test_prompt_step_writes_a_prompt_from_the_reference_and_the_feedback(settings, vlm_worker):
    data_ = {"jobId": JOB_ID, "attempt": 2, "parameters": PARAMETERS, "referenceImageKey": REFERENCE,
             "previous": {"prompt": "old prompt", "feedback": "softer light"}}
    job, state = await run_step(settings, "prompt", data_)
    assert state == "completed", job.failedReason
    assert job.returnvalue["prompt"] and "negativePrompt" in job.returnvalue


async def test_validate_passes_the_deterministic_checks_for_the_reference_itself(settings, vlm_worker):
    job, state = await run_step(settings, "validate", validate_payload(REFERENCE, 512, 512))
    assert state == "completed", job.failedReason
    checks = {c["name"]: c for c in job.returnvalue["checks"]}
    assert {"dimensions", "not_blank", "not_noise", "face_count", "face_size", "identity_distance",
            "vlm_attire", "vlm_background", "vlm_vibe", "vlm_lighting", "vlm_artifacts"} == set(checks)
    assert all(checks[n]["passed"] for n in ("dimensions", "not_blank", "not_noise", "face_count", "face_size", "identity_distance"))
    assert checks["identity_distance"]["value"] == 0


async def test_validate_compares_the_face_with_every_reference_photo(settings, store, vlm_worker):
    store.put_bytes(f"jobs/{JOB_ID}/reference.2.png", png(Image.fromarray(data.astronaut()).resize((400, 400))), "image/png")
    keys = [REFERENCE, f"jobs/{JOB_ID}/coffee.png", f"jobs/{JOB_ID}/reference.2.png"]
    job, state = await run_step(settings, "validate", {**validate_payload(REFERENCE, 512, 512), "referenceImageKeys": keys})
    assert state == "completed", job.failedReason
    identity = {c["name"]: c for c in job.returnvalue["checks"]}["identity_distance"]
    same, none, resized = identity["distances"]
    assert same == 0 and none is None and 0 < resized < 0.6  # one distance per photo, in their order
    assert identity["value"] == pytest.approx((same + resized) / 2, abs=1e-4)  # the median of the photos with a face
    assert identity["passed"] is True


async def test_validate_fails_an_image_without_a_face_and_says_why(settings, vlm_worker):
    job, state = await run_step(settings, "validate", validate_payload(f"jobs/{JOB_ID}/coffee.png", 600, 400))
    assert state == "completed", job.failedReason
    verdict = job.returnvalue
    assert verdict["passed"] is False
    assert "face_count (0)" in verdict["feedback"]


async def test_a_missing_image_is_retried_not_guessed(settings, vlm_worker):
    job, state = await run_step(settings, "validate", validate_payload(f"jobs/{JOB_ID}/nothing.png", 512, 512), {"attempts": 2})
    assert state == "failed" and job.attemptsMade == 2
    assert "NoSuchKey" in job.failedReason


async def test_report_counts_failed_checks_and_writes_a_summary(settings, vlm_worker):
    failed = {"passed": False, "score": 0.5, "feedback": "no face", "best": 0,
              "checks": [{"name": "face_count", "passed": False, "value": 0}, {"name": "dimensions", "passed": True, "value": "1x1"}]}
    attempts = [{"attempt": k, "prompt": "p", "imageKeys": [f"jobs/{JOB_ID}/coffee.png"], "verdict": failed} for k in (1, 2)]
    job, state = await run_step(settings, "report", {"jobId": JOB_ID, "parameters": PARAMETERS,
                                                     "referenceImageKey": REFERENCE, "attempts": attempts})
    assert state == "completed", job.failedReason
    assert job.returnvalue["failedChecks"] == [{"name": "face_count", "count": 2}]
    assert job.returnvalue["summary"] and job.returnvalue["suggestions"]


async def test_validate_judges_every_candidate_and_keeps_the_best(settings, vlm_worker):
    coffee = f"jobs/{JOB_ID}/coffee.png"
    job, state = await run_step(settings, "validate", validate_payload([coffee, REFERENCE, coffee], 512, 512))
    assert state == "completed", job.failedReason
    verdict = job.returnvalue
    assert [c["imageKey"] for c in verdict["candidates"]] == [coffee, REFERENCE, coffee]
    scores = [c["score"] for c in verdict["candidates"]]
    # The astronaut (the reference itself) passes the face and identity checks the coffee cup fails.
    assert verdict["best"] == 1 and scores[1] > max(scores[0], scores[2])
    assert {k: verdict[k] for k in ("passed", "score", "checks", "feedback")} == \
        {k: verdict["candidates"][1][k] for k in ("passed", "score", "checks", "feedback")}
