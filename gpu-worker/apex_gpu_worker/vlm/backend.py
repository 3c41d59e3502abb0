"""One small interface over the two ways of reaching a vision-language model, and the one place
that turns its text into a checked JSON answer."""

import json
import logging
from typing import Protocol

from jsonschema import Draft202012Validator
from PIL import Image

from ..contracts.step_errors import UnparseableAnswer

log = logging.getLogger("apex_gpu_worker.vlm")


class VlmBackend(Protocol):
    def complete(self, images: list[Image.Image], instruction: str, schema: dict, temperature: float) -> str:
        """The model's raw answer, decoded under the JSON schema where the backend can enforce it.
        Blocking: the steps call it from a worker thread."""


def ask_json(backend: VlmBackend, images: list[Image.Image], instruction: str, schema: dict) -> dict:
    """Asks, parses and validates; a bad answer is retried once with sampling (a greedy retry would
    repeat itself), then the step fails with the raw text in the log."""
    validator = Draft202012Validator(schema)
    problem = ""
    for temperature in (0.0, 0.7):
        raw = backend.complete(images, instruction, schema, temperature)
        try:
            answer = _without_nul(json.loads(raw, strict=False))  # other raw control characters are harmless here
            error = next(iter(validator.iter_errors(answer)), None)
            if error is None:
                return answer
            # Where and which rule, not the message: jsonschema's message quotes the answer, which describes the person.
            rule = (f"misses {', '.join(k for k in error.validator_value if k not in error.instance)}"
                    if error.validator == "required" and isinstance(error.instance, dict) else f"fails '{error.validator}'")
            problem = f"{'.'.join(map(str, error.absolute_path)) or '(root)'}: {rule}"
        except json.JSONDecodeError as err:
            problem = f"not JSON ({err.msg} at {err.pos})"
        # The answer's size only: its words describe the person (logs keep ids, never personal data).
        log.warning("unusable VLM answer", extra={"fields": {"rawChars": len(raw), "problem": problem, "temperature": temperature}})
    raise UnparseableAnswer(f"the vision-language model did not return the expected JSON twice: {problem}")


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
