"""Why a step failed, as it crosses to TypeScript. The codes, and the messages a caller reads, are
defined once in TypeScript (src/flows/contracts/stepErrors.ts) and exported to
contracts/step-errors.json. Each error below carries one of those codes; the step worker
(step_worker.py) writes it into the failed job's reason as a first line of JSON ahead of the error's
own wording, which the orchestrator keeps for its logs: only the code and its message reach callers."""

import json
from pathlib import Path

from bullmq import UnrecoverableError

from .loader import read_contract

STEP_ERRORS_FILE = "step-errors.json"


class StepError(UnrecoverableError):
    """A permanent step failure with a code from contracts/step-errors.json. `params` are values the
    caller's message may name, each the caller's own input (a LoRA's repo)."""

    code: str

    def __init_subclass__(cls, code: str | None = None, **kwargs):
        super().__init_subclass__(**kwargs)
        if code:
            cls.code = code

    def __init__(self, detail: str, **params: str):
        super().__init__(detail)
        self.params = params


class ContractViolation(StepError, code="contract_violation"):
    """A payload or result that breaks its contract: retrying cannot fix it."""


class LoraUnusable(StepError, code="lora_unusable"):
    """A LoRA that is missing, private without access, unreadable or made for another model."""


class IdentityLoraUnusable(StepError, code="identity_lora_unusable"):
    """An identity's LoRA that is not in the bucket, does not read as safetensors, or does not fit the model."""


class UnreadableImage(StepError, code="unreadable_image"):
    """Stored image bytes that do not decode, or would decode too large."""


class SecretsUnavailable(StepError, code="secrets_unavailable"):
    """Sealed secrets this worker cannot open (no key, another key, a broken seal)."""


class DestinationRefused(StepError, code="destination_refused"):
    """A caller's own bucket that cannot be written: an endpoint not allowed, or no keys."""


class OutputTooLarge(StepError, code="output_too_large"):
    """A size above what this deployment renders."""


class ModelServerRefused(StepError, code="model_server_refused"):
    """The VLM server answered a 4xx other than 408/429: its configuration, not a passing fault."""


class UnparseableAnswer(StepError, code="unparseable_answer"):
    """The model answered twice with text that is not the JSON the step asked for."""


class IdentityPhotoRefused(StepError, code="photo_refused"):
    """An identity's photo training cannot learn from (no face, several, too small, unreadable): its
    `index` in the step's photos and the `reason`, worded for the person who sent it."""


class StepCancelled(StepError, code="step_cancelled"):
    """The job was cancelled while its step ran (or before it started)."""


def step_error_classes() -> dict[str, type[StepError]]:
    """Every coded error, by code."""
    return {cls.code: cls for cls in StepError.__subclasses__()}


def failure_reason(err: StepError) -> str:
    """The failed job's reason: the code and params as one line of JSON, then the error's wording."""
    return json.dumps({"code": err.code, "params": err.params}, ensure_ascii=False) + "\n" + str(err)


def check_step_error_codes(contracts_dir: Path) -> None:
    """At start: every class's code is in the exported list, so none would cross as a generic failure."""
    listed = read_contract(contracts_dir, STEP_ERRORS_FILE)["codes"]
    unknown = sorted(set(step_error_classes()) - set(listed))
    if unknown:
        raise SystemExit(f"{STEP_ERRORS_FILE} does not list the step error codes {unknown}: run `npm run contracts`")
