"""How the in-process VLM decodes: each question for up to its answer's budget in tokens (derived
from its schema: the longest answer it allows, so no field is cut), and, with APEX_GPU_VLM_COMPILE
on CUDA, a static KV cache of a fixed length and a compiled forward; refused at start elsewhere,
naming the setting. The compiled path itself runs only on a GPU (not measured in this session)."""

import json

import pytest
import torch
from transformers import AutoTokenizer

from apex_gpu_worker.runtime import VLM_ANSWERS, build_vlm
from apex_gpu_worker.vlm import compiled_decoding
from apex_gpu_worker.vlm.answers import JUDGE_ANSWER, PROMPT_ANSWER, PROMPT_REWRITE_ANSWER, max_new_tokens
from apex_gpu_worker.vlm.compiled_decoding import check_compiled_decoding, decode_options
from apex_gpu_worker.vlm.openai_backend import OpenAIBackend
from support.chat_server import ChatServer

ANSWERED = sorted({id(s): s for schemas in VLM_ANSWERS.values() for s in schemas}.values(), key=json.dumps)


def longest_answer(schema: dict):
    """An answer at every bound of the schema, in plain ASCII."""
    kind = schema["type"]
    if kind == "object":
        return {name: longest_answer(value) for name, value in schema["properties"].items()}
    if kind == "array":
        return [longest_answer(schema["items"]) for _ in range(schema["maxItems"])]
    return "x" * schema["maxLength"] if kind == "string" else False


@pytest.mark.parametrize("schema", ANSWERED, ids=lambda s: ",".join(s["properties"])[:40])
def test_each_answers_budget_holds_its_longest_answer_in_the_vlms_tokens(tiny_models, schema):
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["smolvlm"])
    longest = json.dumps(longest_answer(schema), separators=(",", ":"))
    budget = max_new_tokens(schema, 100_000)
    assert budget == len(longest) + 1  # every character, and the stop token
    assert len(tokenizer(longest, add_special_tokens=False)["input_ids"]) < budget


@pytest.mark.parametrize("schema, cap, expected", [
    (PROMPT_ANSWER, 4096, 1248),
    (PROMPT_REWRITE_ANSWER, 4096, 935),  # no subject: a shorter answer
    (JUDGE_ANSWER, 4096, 1083),
    (JUDGE_ANSWER, 1024, 1024),  # APEX_GPU_VLM_MAX_NEW_TOKENS caps it
    ({"type": "object"}, 300, 300),  # no bounds: the cap alone
    ({"type": "object", "properties": {"free": {"type": "string"}}}, 300, 300),
])
def test_max_new_tokens_is_the_schemas_budget_within_the_cap(schema, cap, expected):
    assert max_new_tokens(schema, cap) == expected


def test_the_openai_backend_asks_the_server_for_the_answers_budget():
    server = ChatServer([(200, "{}"), (200, "{}")])
    backend = OpenAIBackend(server.url, "smolvlm2", None, 4096, 10)
    try:
        backend.complete([], "x", PROMPT_REWRITE_ANSWER, 0.0)
        backend.complete([], "x", {"type": "object"}, 0.0)
        assert [r["body"]["max_tokens"] for r in server.requests] == [935, 4096]
    finally:
        backend.close()
        server.close()


@pytest.mark.parametrize("device, cuda", [("cpu", False), ("cpu", True), ("cuda", False), ("mps", False)])
def test_compiled_decoding_is_refused_without_a_cuda_gpu_naming_the_setting(monkeypatch, device, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    with pytest.raises(SystemExit, match=f"APEX_GPU_VLM_COMPILE=true needs a CUDA GPU .*; this worker runs on {device}"):
        check_compiled_decoding(True, device)


@pytest.mark.parametrize("enabled, device, cuda", [(True, "cuda", True), (True, "cuda:0", True), (False, "cpu", False), (False, "cuda", True)])
def test_compiled_decoding_is_accepted_on_cuda_and_off_anywhere(monkeypatch, enabled, device, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert check_compiled_decoding(enabled, device) is None


def test_the_worker_with_compiled_decoding_on_a_cpu_stops_before_loading_the_vlm(settings, monkeypatch):
    settings.vlm_compile, settings.device, settings.vlm_model = True, "cpu", "/no/such/model"  # loading it would fail otherwise
    with pytest.raises(SystemExit, match="APEX_GPU_VLM_COMPILE=true needs a CUDA GPU"):
        build_vlm(settings)


def test_compiled_decoding_fixes_the_cache_shape_and_off_changes_nothing():
    assert decode_options(False, 4096) == {}
    options = decode_options(True, 3000)
    assert options["cache_implementation"] == "static" and options["max_cache_len"] == 3000
    config = options["compile_config"]
    assert (config.dynamic, config.mode, config.fullgraph) == (False, "reduce-overhead", False)
    assert compiled_decoding.MAX_ROWS == 4  # every batch size validate asks for is compiled at start
