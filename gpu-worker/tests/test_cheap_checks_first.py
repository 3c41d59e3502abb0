"""Validation runs the deterministic checks before the VLM: a candidate that fails a gating check
(no face, so no face size and no identity distance either) is never shown to the VLM; its verdict
says the judgement was skipped and why, and its feedback is the failed checks. Through a real queue,
the real S3 server and the tiny in-process VLM, with a spy counting what the VLM is shown."""

import pytest
from PIL import Image
from skimage import data

from apex_gpu_worker.checks.faces import FaceAnalyzer
from apex_gpu_worker.runtime import WorkerRuntime, build_vlm
from apex_gpu_worker.steps.validate import validate_step
from support.counting_vlm import CountingVlm
from support.images import png
from support.queue_runs import JOB_ID, PARAMETERS, run_step

REFERENCE = f"jobs/{JOB_ID}/reference.png"
NO_FACE = f"jobs/{JOB_ID}/coffee.png"


@pytest.fixture
async def counted(settings, store):
    store.put_bytes(REFERENCE, png(Image.fromarray(data.astronaut())), "image/png")
    store.put_bytes(NO_FACE, png(Image.fromarray(data.coffee()).resize((512, 512))), "image/png")
    vlm = CountingVlm(build_vlm(settings))
    runtime = await WorkerRuntime.start(settings, {"validate": validate_step(settings, store, vlm, FaceAnalyzer(settings.face_min_score))})
    yield vlm
    await runtime.stop()


async def validate(settings, keys: list[str]) -> dict:
    job, state = await run_step(settings, "validate", {
        "jobId": JOB_ID, "attempt": 1, "parameters": PARAMETERS, "referenceImageKey": REFERENCE, "imageKeys": keys,
        "prompt": "a portrait", "expectedWidth": 512, "expectedHeight": 512})
    assert state == "completed", job.failedReason
    return job.returnvalue


async def test_a_candidate_without_a_face_is_never_shown_to_the_vlm_and_its_feedback_is_the_failed_checks(settings, counted):
    verdict = await validate(settings, [NO_FACE])
    assert counted.calls == []
    assert verdict["passed"] is False and verdict["judgement"]["status"] == "skipped"
    assert verdict["judgement"]["reason"] == "failed gating checks: face_count (0), face_size (None), identity_distance (None)"
    assert {c["name"] for c in verdict["checks"]} == {"dimensions", "not_blank", "not_noise", "face_count", "face_size", "identity_distance"}
    assert verdict["feedback"] == "Failed checks: face_count (0), face_size (None), identity_distance (None)."


async def test_only_the_candidates_that_clear_every_gate_reach_the_vlm(settings, counted):
    verdict = await validate(settings, [NO_FACE, REFERENCE, NO_FACE])
    shown = sum(len(call["images"]) for call in counted.calls)
    assert shown == 1  # the reference, alone
    assert [c["judgement"]["status"] for c in verdict["candidates"]] == ["skipped", "judged", "skipped"]
    assert verdict["best"] == 1 and {c["name"] for c in verdict["checks"]} >= {"vlm_attire", "vlm_artifacts"}


@pytest.mark.parametrize("gating, judged", [
    ([], False),  # every check gates: the missing face stops it
    (["face_count"], False),
    (["identity_distance", "dimensions"], False),
    (["dimensions", "not_blank"], True),  # the failed face checks do not gate: the VLM still judges it
    (["vlm_artifacts"], True),
])
async def test_which_failed_checks_stop_the_judgement_follows_the_gating_setting(settings, store, gating, judged):
    store.put_bytes(NO_FACE, png(Image.fromarray(data.coffee()).resize((512, 512))), "image/png")
    store.put_bytes(REFERENCE, png(Image.fromarray(data.astronaut())), "image/png")
    settings.gating_checks = gating
    vlm = CountingVlm(build_vlm(settings))
    run = validate_step(settings, store, vlm, FaceAnalyzer(settings.face_min_score))
    verdict = await run({"jobId": JOB_ID, "attempt": 1, "parameters": PARAMETERS, "referenceImageKey": REFERENCE,
                         "imageKeys": [NO_FACE], "prompt": "a portrait", "expectedWidth": 512, "expectedHeight": 512}, None, None)
    assert (verdict["judgement"]["status"] == "judged") is judged
    assert len(counted_images(vlm)) == (1 if judged else 0)


def counted_images(vlm: CountingVlm) -> list[int]:
    return [n for call in vlm.calls for n in call["images"]]
