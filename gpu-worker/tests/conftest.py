"""Real services for the Python tests, from the project's own services script (the same one
jest's global setup and `npm run dev` use): Redis, FerretDB and MinIO on free local ports."""

import os
import subprocess
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def settings(services, monkeypatch):
    """Worker settings on the real Redis with a queue prefix of this test's own."""
    from apex_gpu_worker.settings import WorkerSettings

    monkeypatch.setenv("REDIS_URL", services["REDIS_URL"])
    monkeypatch.setenv("QUEUE_PREFIX", f"py{uuid.uuid4().hex[:8]}")
    return WorkerSettings()
