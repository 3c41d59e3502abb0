"""The typed payloads (apex_gpu_worker/contracts/payloads.py) are generated from contracts/, the same
JSON Schemas contracts/validation.py validates with, so the types cannot drift from what is checked."""

import json

from dev_support.generate_payloads import TARGET, render


def test_the_payload_types_are_generated_from_the_current_contracts():
    assert TARGET.read_text() == render(), "apex_gpu_worker/payloads.py is stale: run `python -m dev_support.generate_payloads` in gpu-worker/"


def test_a_step_contract_added_to_contracts_becomes_a_step_with_typed_payloads(tmp_path):
    closed = {"type": "object", "additionalProperties": False}
    (tmp_path / "upscale.input.schema.json").write_text(json.dumps(
        {**closed, "properties": {"jobId": {"type": "string"}, "factor": {"type": "integer", "enum": [2, 4]}}, "required": ["jobId"]}))
    (tmp_path / "upscale.result.schema.json").write_text(json.dumps(
        {**closed, "properties": {"images": {"type": "array", "items": {"type": "object", "properties": {"key": {"type": "string"}}, "required": ["key"]}}},
         "required": ["images"]}))
    module = render(tmp_path)
    assert 'STEP_NAMES: tuple[StepName, ...] = ("upscale",)' in module
    assert "class UpscaleInput(TypedDict):\n    jobId: str\n    factor: NotRequired[Factor]\n" in module
    assert "Factor = Literal[2, 4]" in module
    assert "class Image(TypedDict):\n    key: str\n\n\nclass UpscaleResult(TypedDict):\n    images: list[Image]\n" in module
