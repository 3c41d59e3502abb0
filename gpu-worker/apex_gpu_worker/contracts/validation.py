"""The queue payload contracts, read from the JSON Schemas that the TypeScript side generates
(contracts/*.schema.json), so both languages check the same definition."""

import json
from functools import cache
from pathlib import Path

from bullmq import UnrecoverableError
from jsonschema import Draft202012Validator

from .payloads import STEP_NAMES


class ContractViolation(UnrecoverableError):
    """A payload or result that breaks its contract: retrying cannot fix it."""


@cache
def _validator(contracts_dir: Path, name: str) -> Draft202012Validator:
    schema = json.loads((contracts_dir / f"{name}.schema.json").read_text())
    return Draft202012Validator(schema)


def _check(contracts_dir: Path, step: str, kind: str, value: object) -> None:
    if step not in STEP_NAMES:
        raise ContractViolation(f"unknown step {step!r}")
    errors = sorted(_validator(contracts_dir, f"{step}.{kind}").iter_errors(value), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        field = ".".join(str(p) for p in first.absolute_path) or "(root)"
        raise ContractViolation(f"invalid {step} {kind}: {field}: {first.message}")


def check_input(contracts_dir: Path, step: str, payload: object) -> dict:
    """Validates a step job's data before any work; the message names the offending field."""
    _check(contracts_dir, step, "input", payload)
    return payload  # type: ignore[return-value]


def check_result(contracts_dir: Path, step: str, result: object) -> dict:
    """Validates what a step is about to return, so a bug here fails here, not in the orchestrator."""
    _check(contracts_dir, step, "result", result)
    return result  # type: ignore[return-value]
