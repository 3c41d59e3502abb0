"""One small interface over the two ways of reaching a vision-language model, and the one place
that turns its text into a checked JSON answer."""

import json
import logging
from typing import Protocol

from jsonschema import Draft202012Validator
from PIL import Image

from ..contracts.step_errors import UnparseableAnswer

log = logging.getLogger("apex_gpu_worker.vlm")


# One question of a batch: the images it is about and the instruction.
VlmRequest = tuple[list[Image.Image], str]


class VlmBackend(Protocol):
    def complete(self, images: list[Image.Image], instruction: str, schema: dict, temperature: float) -> str:
        """The model's raw answer, decoded under the JSON schema where the backend can enforce it.
        Blocking: the steps call it from a worker thread."""

    def complete_batch(self, requests: list[VlmRequest], schema: dict, temperature: float) -> list[str]:
        """The raw answers to several questions under one schema, in their order, asked at once (one
        batched generate in-process, concurrent requests to a server, which batches them)."""

    def warm(self, schemas: tuple[dict, ...]) -> dict:
        """Builds what the first answer under each schema would otherwise build (its JSON grammar,
        compiled graphs) before the worker takes a job; says what it built, for the start log."""


GREEDY, RETRY_TEMPERATURE = 0.0, 0.7


def ask_json(backend: VlmBackend, images: list[Image.Image], instruction: str, schema: dict) -> dict:
    """Asks, parses and validates; a bad answer is retried once with sampling (a greedy retry would
    repeat itself), then the step fails with the raw text in the log."""
    return _checked(backend, (images, instruction), schema, backend.complete(images, instruction, schema, GREEDY))


def ask_json_batch(backend: VlmBackend, requests: list[VlmRequest], schema: dict) -> list[dict]:
    """ask_json for several questions under one schema, asked at once; an unusable answer is retried
    alone, as ask_json would."""
    if not requests:
        return []
    raws = backend.complete_batch(requests, schema, GREEDY)
    return [_checked(backend, request, schema, raw) for request, raw in zip(requests, raws)]


def _checked(backend: VlmBackend, request: VlmRequest, schema: dict, raw: str) -> dict:
    validator = Draft202012Validator(schema)
    for temperature in (GREEDY, RETRY_TEMPERATURE):
        if temperature != GREEDY:
            raw = backend.complete(*request, schema, temperature)
        answer, problem = _parsed(validator, raw)
        if answer is not None:
            return answer
        # The answer's size only: its words describe the person (logs keep ids, never personal data).
        log.warning("unusable VLM answer", extra={"fields": {"rawChars": len(raw), "problem": problem, "temperature": temperature}})
    raise UnparseableAnswer(f"the vision-language model did not return the expected JSON twice: {problem}")


def _parsed(validator: Draft202012Validator, raw: str) -> tuple[dict | None, str]:
    """The answer when it is JSON that meets the schema, else None and what is wrong with it."""
    try:
        answer = _without_nul(json.loads(raw, strict=False))  # other raw control characters are harmless here
    except json.JSONDecodeError as err:
        return None, f"not JSON ({err.msg} at {err.pos})"
    error = next(iter(validator.iter_errors(answer)), None)
    if error is None:
        return answer, ""
    # Where and which rule, not the message: jsonschema's message quotes the answer, which describes the person.
    rule = (f"misses {', '.join(k for k in error.validator_value if k not in error.instance)}"
            if error.validator == "required" and isinstance(error.instance, dict) else f"fails '{error.validator}'")
    return None, f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: {rule}"


def _without_nul(value):
    """U+0000 is valid JSON, and random or confused models write it, but the job store cannot keep it
    (PostgreSQL under FerretDB refuses the whole document): it is dropped from every string."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_nul(item) for key, item in value.items()}
    return value
