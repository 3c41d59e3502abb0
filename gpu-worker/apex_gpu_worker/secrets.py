"""Opens per-request secrets that the API sealed with AES-256-GCM (src/flows/secrets.ts defines the
`v1.<iv>.<tag>.<ciphertext>` envelope; secrets_binding is the authenticated data). Only the step
that uses a secret opens it; the values are never logged or returned."""

import base64
import json

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .contracts.payloads import Destination
from .contracts.step_errors import SecretsUnavailable


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def secrets_binding(job_id: str, destination: Destination | None = None) -> str:
    """What a job's secrets are bound to: its id and, when its images go to the caller's bucket,
    that destination. Editing a queued job's destination (an operator in the dashboard) breaks the
    seal, so the caller's keys never reach a place the caller did not name. Byte for byte the same
    as secretsBinding in src/flows/secrets.ts (JSON.stringify of the same array)."""
    if not destination:
        return job_id
    fields = [job_id, destination["bucket"], *(destination.get(k) or "" for k in ("endpoint", "prefix", "region"))]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def open_secrets(key_base64: str | None, binding: str, envelope: str) -> dict[str, str]:
    if not key_base64:
        raise SecretsUnavailable("the job carries sealed secrets but this worker has no SECRETS_KEY")
    try:
        version, iv, tag, ciphertext = envelope.split(".")
        if version != "v1":
            raise ValueError(f"unknown envelope version {version!r}")
        plain = AESGCM(base64.b64decode(key_base64)).decrypt(_b64url(iv), _b64url(ciphertext) + _b64url(tag), binding.encode())
        return json.loads(plain)
    except Exception as err:  # a wrong key, a tampered envelope, one bound to another job or destination
        raise SecretsUnavailable(f"the job's sealed secrets cannot be opened: {type(err).__name__}") from None
