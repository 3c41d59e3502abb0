"""Checks queue payloads against their contracts, the JSON Schemas the TypeScript side generates
(contracts/*.schema.json, named by the step catalogue), so both languages check the same definition."""

from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

from .loader import read_contract
from .step_errors import ContractViolation
from .steps import ContractKind, step_catalogue


@cache
def _validator(contracts_dir: Path, schema_file: str) -> Draft202012Validator:
    return Draft202012Validator(read_contract(contracts_dir, schema_file))


def _check(contracts_dir: Path, step: str, kind: ContractKind, value: object) -> None:
    schema_file = step_catalogue(contracts_dir).contract_file(step, kind)
    if schema_file is None:
        raise ContractViolation(f"unknown step {step!r}")
    errors = sorted(_validator(contracts_dir, schema_file).iter_errors(value), key=lambda e: list(e.absolute_path))
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
