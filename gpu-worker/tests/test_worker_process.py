"""`python -m apex_gpu_worker` as a real process: it serves its role's queues and, on SIGTERM,
stops taking jobs, finishes the one in hand and exits 0; without its models it does not start."""

import asyncio
import json
import os
import signal
import subprocess
import sys

from bullmq import Queue

from support.queue_runs import JOB_ID, wait_until_done
from test_generate import PAYLOAD


def worker_env(settings) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": ".",
        "REDIS_URL": settings.redis_url,
        "QUEUE_PREFIX": settings.queue_prefix,
        "S3_BUCKET": settings.s3_bucket,
        "APEX_GPU_FLUX_MODEL": settings.flux_model,
        "APEX_GPU_PORTRAIT_MODEL": settings.portrait_model,
        "APEX_GPU_UPSCALER_MODELS": json.dumps(settings.upscaler_models),
        "APEX_GPU_DEFAULT_STEPS": "4",
        "APEX_GPU_NATIVE_MAX_MEGAPIXELS": "0.08",
        "APEX_GPU_SHUTDOWN_GRACE_S": "60",
    }


async def start_worker(settings, *args: str, env: dict | None = None) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apex_gpu_worker", *args, env={**worker_env(settings), **(env or {})},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    async for line in proc.stderr:
        if b"GPU worker ready" in line:
            return proc
    raise RuntimeError(f"worker exited with {await proc.wait()} before it was ready")


async def test_sigterm_lets_the_job_in_hand_finish_then_exits_cleanly(settings, store):
    proc = await start_worker(settings, "--role", "diffusion")
    queue = Queue("generate", {"connection": settings.redis_url, "prefix": settings.queue_prefix})
    job = await queue.add("generate", {**PAYLOAD, "steps": 60, "width": 512, "height": 512}, {"attempts": 1})
    for _ in range(3000):  # wait until it is being denoised (up to a minute on a busy machine)
        current = await queue.getJob(job.id)
        if isinstance(current.progress, dict):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the worker reported no denoising progress within a minute")
    proc.send_signal(signal.SIGTERM)
    exit_code = await asyncio.wait_for(proc.wait(), 60)
    finished, state = await wait_until_done(queue, job.id, timeout_s=5)
    await queue.close()
    assert exit_code == 0
    assert state == "completed", finished.failedReason
    assert finished.returnvalue["images"][0]["key"] == f"jobs/{JOB_ID}/attempts/1/0.png"


def test_queues_outside_the_role_are_refused_at_start(settings):
    result = subprocess.run([sys.executable, "-m", "apex_gpu_worker", "--role", "diffusion", "--queues", "validate"],
                            env=worker_env(settings), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--queues: ['validate'] are not served by role diffusion" in result.stderr


def test_without_the_tiny_models_built_the_worker_refuses_to_start_and_says_how_to_build_them(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("APEX_GPU_")}
    env.update({"PYTHONPATH": ".", "HOME": str(tmp_path)})  # the default model folders are under HOME, not built
    result = subprocess.run([sys.executable, "-m", "apex_gpu_worker", "--role", "all"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "(APEX_GPU_FLUX_MODEL and APEX_GPU_PORTRAIT_MODEL and APEX_GPU_UPSCALER_MODELS and APEX_GPU_VLM_MODEL default to them" in result.stderr
    assert "run `.venv/bin/python -m dev_support.tiny_models` in gpu-worker/" in result.stderr
