"""The envelope the TypeScript API seals (src/flows/secrets.ts) opens here, and only for its job."""

import base64
import json
import os

import pytest
from bullmq import UnrecoverableError

from apex_gpu_worker.secrets import open_secrets, secrets_binding
from support.sealing import run_typescript, seal as seal_in_typescript

KEY = base64.b64encode(os.urandom(32)).decode()
JOB = "65a1b2c3d4e5f60718293a4b"


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


def test_the_binding_of_a_destination_is_this_exact_string():
    """The shared test vector: src/flows/secrets.ts must give the same bytes."""
    destination = {"bucket": "bucket-a", "endpoint": "https://s3.example.com", "prefix": "renders/", "region": "eu-west-1"}
    assert secrets_binding("job1", destination) == '["job1","bucket-a","https://s3.example.com","renders/","eu-west-1"]'
    assert secrets_binding("job1", {"bucket": "bucket-a"}) == '["job1","bucket-a","","",""]'
    assert secrets_binding("job1") == "job1"


def test_the_binding_is_the_same_bytes_in_typescript():
    destinations = [
        None,
        {"bucket": "bucket-a", "endpoint": "https://s3.example.com", "prefix": "renders/", "region": "eu-west-1"},
        {"bucket": "b.c-d", "region": 'ü "quoted" \\ back\nslash\u2028\x01'},
        {"bucket": "bücher", "endpoint": "https://bücher.example/s3?x=\u00e9&y=/"},
    ]
    script = (
        "const { secretsBinding } = require('./src/flows/secrets');"
        f"const cases = {json.dumps(destinations)};"
        f"process.stdout.write(JSON.stringify(cases.map((d) => secretsBinding({json.dumps(JOB)}, d ?? undefined))));"
    )
    typescript = json.loads(run_typescript(script))
    assert typescript == [secrets_binding(JOB, d) for d in destinations]


def test_secrets_sealed_by_the_api_for_a_destination_open_only_for_that_destination():
    destination = {"bucket": "bucket-a", "endpoint": "https://s3.example.com", "prefix": "renders/"}
    envelope = seal_in_typescript(KEY, JOB, {"s3": {"access_key_id": "AKIA"}}, destination)
    assert open_secrets(KEY, secrets_binding(JOB, destination), envelope) == {"s3": {"access_key_id": "AKIA"}}
    for edited in ({**destination, "endpoint": "https://s3.attacker.example"}, {**destination, "region": "us-east-1"}, None):
        with pytest.raises(UnrecoverableError, match="the job's sealed secrets cannot be opened"):
            open_secrets(KEY, secrets_binding(JOB, edited), envelope)
