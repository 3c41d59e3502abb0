"""Real services for the Python tests, from the project's own services script (the same one
jest's global setup and `npm run dev` use): Redis, FerretDB and MinIO on free local ports; and the
tiny random-weight models, built offline into a temp dir and loaded like production models."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in the tests may reach the Hub


@pytest.fixture(scope="session")
def services():
    proc = subprocess.Popen(
        # node itself, not the npx/tsx wrappers: SIGTERM must reach the script that stops the servers.
        ["node", "--import", "tsx", "scripts/services.ts", "start"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    env = {}
    for line in proc.stdout:
        key, _, value = line.strip().partition("=")
        env[key] = value
        if key == "S3_FORCE_PATH_STYLE":  # the last line the script prints
            break
    if "REDIS_URL" not in env:
        proc.kill()
        raise RuntimeError("services script did not start")
    yield env
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    from dev_support.tiny_models import ensure_tiny_models

    return ensure_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture
def settings(services, tiny_models, tmp_path, monkeypatch):
    """Worker settings on the real services with a queue prefix and a bucket of this test's own,
    the tiny models, and an empty Hugging Face cache."""
    from apex_gpu_worker.settings import WorkerSettings

    for key in ("REDIS_URL", "S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_FORCE_PATH_STYLE"):
        monkeypatch.setenv(key, services[key])
    monkeypatch.setenv("QUEUE_PREFIX", f"py{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv("S3_BUCKET", f"py-{uuid.uuid4().hex[:10]}")
    return WorkerSettings(
        flux_model=str(tiny_models["flux"]),
        portrait_model=str(tiny_models["kontext"]),
        vlm_model=str(tiny_models["smolvlm"]),
        upscaler_models=[str(tiny_models["upscaler"])],
        default_steps=4,
        # Random weights fill every string to its maxLength, often with multi-token characters.
        vlm_max_new_tokens=4096,
        native_max_megapixels=0.08,
        lora_cache_dir=tmp_path / "hf-cache",
        shutdown_grace_s=5,
    )


@pytest.fixture
def store(settings):
    """The test's bucket, created on the real MinIO."""
    from apex_gpu_worker.object_store import ObjectStore

    store = ObjectStore(settings)
    store._client.create_bucket(Bucket=settings.s3_bucket)
    return store
