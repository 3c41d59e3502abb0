"""Secrets sealed by the API's own code (src/flows/secrets.ts, run by node), for payloads built in
Python tests: the worker is tested on envelopes that TypeScript wrote, not on a Python copy of the
sealer."""

import json
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_typescript(script: str) -> str:
    """What `script` (CommonJS, run in the repository root with tsx) writes to stdout."""
    done = subprocess.run(["node", "--import", "tsx", "-e", script], cwd=REPO_ROOT, capture_output=True, encoding="utf-8")
    if done.returncode != 0:
        raise RuntimeError(f"node failed: {done.stderr}")
    return done.stdout


def seal(key_base64: str, job_id: str, secrets: dict, destination: dict | None = None) -> str:
    """The envelope the API would queue for this job (and destination)."""
    return run_typescript(
        "const { sealSecrets, secretsBinding } = require('./src/flows/secrets');"
        f"process.stdout.write(sealSecrets({json.dumps(key_base64)}, secretsBinding({json.dumps(job_id)}, {json.dumps(destination)} ?? undefined), {json.dumps(secrets)}));"
    )
