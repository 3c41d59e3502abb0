"""The worker compiles the JSON grammar of every answer its VLM steps ask for before it takes a job
(the first answer of each kind used to compile it, 10-15 s on a full-size model), and says so in its
log (the real process logs it before it says it is ready); its jobs then compile none. Counted,
not timed: the in-process backend counts the grammars it has compiled."""

import asyncio
import json
import logging
import signal
import sys

from PIL import Image
from skimage import data

from apex_gpu_worker import runtime
from apex_gpu_worker.contracts.steps import step_catalogue
from apex_gpu_worker.runtime import VLM_ANSWERS, WorkerRuntime, build_processors
from support.images import png
from support.queue_runs import JOB_ID, PARAMETERS, run_step
from test_worker_process import worker_env

REFERENCE = f"jobs/{JOB_ID}/reference.png"


def test_every_step_of_the_vlm_pool_names_the_answers_it_asks_for(settings):
    catalogue = step_catalogue(settings.contracts_dir)
    vlm_steps = {queue.step for queue in catalogue.queues.values() if queue.pool == "vlm"}
    assert vlm_steps - set(VLM_ANSWERS) == set()
    assert all(VLM_ANSWERS[step] for step in ("prompt", "validate", "report", "caption_identity"))


async def test_grammars_are_compiled_before_the_first_job_and_no_job_compiles_one(settings, store, monkeypatch, caplog):
    store.put_bytes(REFERENCE, png(Image.fromarray(data.astronaut())), "image/png")
    built = []
    monkeypatch.setattr(runtime, "build_vlm", lambda s, real=runtime.build_vlm: built.append(real(s)) or built[-1])
    with caplog.at_level(logging.INFO, logger="apex_gpu_worker"):
        processors = build_processors(settings, ("prompt", "validate", "report"))
    vlm, = built
    expected = len({id(schema) for step in ("prompt", "validate", "report") for schema in VLM_ANSWERS[step]})
    warmed, = [r.fields for r in caplog.records if r.getMessage() == "VLM warmed before the first job"]
    assert warmed["grammars_compiled"] == vlm._json.grammars_compiled == expected
    worker = await WorkerRuntime.start(settings, processors)
    try:
        previous = {"prompt": "old", "feedback": "softer light"}
        for step, payload in (
            ("prompt", {"jobId": JOB_ID, "attempt": 1, "parameters": PARAMETERS, "referenceImageKey": REFERENCE, "previous": None}),
            ("prompt", {"jobId": JOB_ID, "attempt": 2, "parameters": PARAMETERS, "referenceImageKey": REFERENCE, "previous": previous}),
            ("validate", {"jobId": JOB_ID, "attempt": 1, "parameters": PARAMETERS, "referenceImageKey": REFERENCE,
                          "imageKeys": [REFERENCE], "prompt": "a portrait", "expectedWidth": 512, "expectedHeight": 512}),
        ):
            job, state = await run_step(settings, step, payload)
            assert state == "completed", job.failedReason
    finally:
        await worker.stop()
    assert vlm._json.grammars_compiled == expected  # the jobs compiled nothing more


def test_a_process_without_vlm_steps_loads_no_vlm_to_warm(settings, monkeypatch):
    monkeypatch.setattr(runtime, "build_vlm", lambda s: (_ for _ in ()).throw(AssertionError("the VLM was loaded")))
    assert set(build_processors(settings, ("prepare_identity",))) == {"prepare_identity"}


async def test_the_worker_process_logs_its_warm_up_before_it_is_ready(settings):
    env = {**worker_env(settings), "APEX_GPU_VLM_MODEL": settings.vlm_model, "APEX_GPU_VLM_MAX_NEW_TOKENS": "4096"}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "apex_gpu_worker", "--role", "vlm", "--queues", "prompt,validate",
                                                env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    lines = []
    try:
        async for line in proc.stderr:
            lines.append(line.decode())
            if "GPU worker ready" in lines[-1]:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)
    warmed = [i for i, line in enumerate(lines) if "VLM warmed before the first job" in line]
    ready = [i for i, line in enumerate(lines) if "GPU worker ready" in line]
    assert warmed and ready and warmed[0] < ready[0], "".join(lines[-20:])
    logged = json.loads(lines[warmed[0]])
    assert (logged["answers"], logged["grammars_compiled"]) == (3, 3)  # the prompt's two answers and the judgement
