"""The envelope the TypeScript API seals (src/flows/secrets.ts) opens here, and only for its job."""

import base64
import json
import os
import subprocess

import pytest
from bullmq import UnrecoverableError

from apex_gpu_worker.secrets import open_secrets
from conftest import REPO_ROOT

KEY = base64.b64encode(os.urandom(32)).decode()
JOB = "65a1b2c3d4e5f60718293a4b"


def seal_in_typescript(key: str, job_id: str, secrets: dict) -> str:
    script = (
        "const { sealSecrets } = require('./src/flows/secrets');"
        f"process.stdout.write(sealSecrets({json.dumps(key)}, {json.dumps(job_id)}, {json.dumps(secrets)}));"
    )
    return subprocess.run(["node", "--import", "tsx", "-e", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout


def test_an_envelope_sealed_by_the_api_opens_in_the_worker():
    envelope = seal_in_typescript(KEY, JOB, {"hf_token": "hf_secret_value"})
    assert "hf_secret_value" not in envelope
    assert open_secrets(KEY, JOB, envelope) == {"hf_token": "hf_secret_value"}


def test_it_does_not_open_for_another_job_a_wrong_key_or_a_tampered_envelope():
    envelope = seal_in_typescript(KEY, JOB, {"hf_token": "hf_secret_value"})
    other_key = base64.b64encode(os.urandom(32)).decode()
    version, iv, tag, ciphertext = envelope.split(".")
    tampered = ".".join([version, iv, tag, ("A" if ciphertext[0] != "A" else "B") + ciphertext[1:]])
    for key, job, env in ((KEY, "65a1b2c3d4e5f60718293a4c", envelope), (other_key, JOB, envelope), (KEY, JOB, tampered), (None, JOB, envelope)):
        with pytest.raises(UnrecoverableError) as raised:
            open_secrets(key, job, env)
        assert "hf_secret_value" not in str(raised.value)
