import json

import pytest
import torch
from bullmq import UnrecoverableError
from PIL import Image
from jsonschema import validate

from apex_gpu_worker.vlm.answers import JUDGE_ANSWER, PROMPT_ANSWER, REPORT_ANSWER
from apex_gpu_worker.vlm.backend import UnparseableAnswer, ask_json
from apex_gpu_worker.vlm.openai_backend import OpenAIBackend
from apex_gpu_worker.vlm.transformers_backend import TransformersBackend
from support.chat_server import ChatServer

GOOD = json.dumps({"subject": "a man with short hair", "prompt": "studio portrait of a man", "negative_prompt": "blur"})
IMAGE = Image.new("RGB", (64, 64), "grey")


@pytest.fixture
def chat():
    servers = []

    def start(answers):
        server = ChatServer(answers)
        servers.append(server)
        return server, OpenAIBackend(server.url, "smolvlm2", "vlm-secret", 256, 10)

    yield start
    for server in servers:
        server.close()


def test_openai_backend_sends_image_schema_and_key_and_parses_the_answer(chat):
    server, backend = chat([(200, GOOD)])
    assert ask_json(backend, [IMAGE], "describe", PROMPT_ANSWER)["prompt"] == "studio portrait of a man"
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer vlm-secret"
    body = request["body"]
    assert body["model"] == "smolvlm2" and body["temperature"] == 0.0
    assert body["response_format"]["json_schema"]["schema"] == PROMPT_ANSWER
    content = body["messages"][0]["content"]
    assert content[0]["image_url"]["url"].startswith("data:image/png;base64,") and content[1]["text"] == "describe"


def test_an_unparseable_answer_is_retried_once_with_sampling(chat):
    server, backend = chat([(200, "Sure! Here is the prompt: ..."), (200, GOOD)])
    assert ask_json(backend, [IMAGE], "describe", PROMPT_ANSWER)["subject"] == "a man with short hair"
    assert [r["body"]["temperature"] for r in server.requests] == [0.0, 0.7]


def test_nul_characters_are_dropped_from_answers_since_the_job_store_cannot_keep_them(chat):
    with_nul = json.dumps({"subject": "a man\u0000 with short hair", "prompt": "studio\u0000", "negative_prompt": "blur"})
    server, backend = chat([(200, with_nul), (200, json.dumps({"subject": "\u0000", "prompt": "p", "negative_prompt": "n"})), (200, GOOD)])
    assert ask_json(backend, [IMAGE], "describe", PROMPT_ANSWER) == {"subject": "a man with short hair", "prompt": "studio", "negative_prompt": "blur"}
    # A string that was only NUL is empty after, so the answer fails its schema and is asked again.
    assert ask_json(backend, [IMAGE], "describe", PROMPT_ANSWER)["subject"] == "a man with short hair"


def test_two_unusable_answers_fail_the_step_permanently_and_log_what_failed_but_not_the_words(chat, caplog):
    server, backend = chat([(200, "not json"), (200, json.dumps({"subject": "a woman with red hair"}))])
    with pytest.raises(UnparseableAnswer, match="prompt"):
        ask_json(backend, [IMAGE], "describe", PROMPT_ANSWER)
    fields = [r.fields for r in caplog.records if hasattr(r, "fields")]
    assert [f["rawChars"] for f in fields] == [len("not json"), len(json.dumps({"subject": "a woman with red hair"}))]
    assert "red hair" not in caplog.text and "not json" not in caplog.text


def test_a_refused_request_is_permanent_and_a_server_error_is_retryable(chat):
    server, backend = chat([(401, "bad key"), (503, "overloaded")])
    with pytest.raises(UnrecoverableError, match="HTTP 401"):
        backend.complete([IMAGE], "x", PROMPT_ANSWER, 0.0)
    with pytest.raises(Exception, match="HTTP 503") as raised:
        backend.complete([IMAGE], "x", PROMPT_ANSWER, 0.0)
    assert not isinstance(raised.value, UnrecoverableError)
    assert server.url.split("//")[1].split("/")[0] not in str(raised.value)  # the caller reads it: no server address


@pytest.mark.parametrize("schema", [PROMPT_ANSWER, JUDGE_ANSWER, REPORT_ANSWER], ids=["prompt", "judge", "report"])
def test_in_process_smolvlm_answers_match_the_schema_under_constrained_decoding(tiny_models, schema):
    backend = TransformersBackend(str(tiny_models["smolvlm"]), "cpu", torch.float32, 1024)
    validate(ask_json(backend, [IMAGE, IMAGE], "answer", schema), schema)  # random weights, valid JSON all the same
