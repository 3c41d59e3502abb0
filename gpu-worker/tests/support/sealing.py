"""Seals secrets the way the API does (src/flows/secrets.ts), for payloads built in Python tests."""

import base64
import json
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apex_gpu_worker.secrets import secrets_binding


def seal(key_base64: str, job_id: str, secrets: dict, destination: dict | None = None) -> str:
    iv = os.urandom(12)
    binding = secrets_binding(job_id, destination).encode()
    sealed = AESGCM(base64.b64decode(key_base64)).encrypt(iv, json.dumps(secrets).encode(), binding)
    ciphertext, tag = sealed[:-16], sealed[-16:]
    part = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
    return ".".join(["v1", part(iv), part(tag), part(ciphertext)])
