"""The candidates that reach the VLM are judged in one call: one batched generate in-process, giving
the verdicts that one answer at a time gives (greedy, the tiny SmolVLM, fixed weights); concurrent
requests to an OpenAI-compatible server (a real HTTP server here, which answers only once every
request of the batch is in hand)."""

import json

import pytest
import torch
from PIL import Image, ImageOps
from skimage import data

from apex_gpu_worker.checks.faces import FaceAnalyzer
from apex_gpu_worker.steps.validate import validate_step
from apex_gpu_worker.vlm.answers import JUDGE_ANSWER
from apex_gpu_worker.vlm.backend import ask_json, ask_json_batch
from apex_gpu_worker.vlm.openai_backend import OpenAIBackend
from apex_gpu_worker.vlm.transformers_backend import TransformersBackend
from support.chat_server import ChatServer
from support.counting_vlm import CountingVlm
from support.images import png
from support.queue_runs import JOB_ID, PARAMETERS

ASTRONAUT = Image.fromarray(data.astronaut()).resize((256, 256))
CANDIDATES = [ASTRONAUT, ImageOps.mirror(ASTRONAUT), Image.fromarray(data.coffee()).resize((256, 256))]


class OneAtATime:
    """The same backend answering a batch one question after another, as validation used to."""

    def __init__(self, backend):
        self._backend = backend

    def complete(self, *args):
        return self._backend.complete(*args)

    def complete_batch(self, requests, schema, temperature):
        return [self._backend.complete(images, instruction, schema, temperature) for images, instruction in requests]


@pytest.fixture(scope="module")
def smolvlm(tiny_models):
    return TransformersBackend(str(tiny_models["smolvlm"]), "cpu", torch.float32, 4096)


def test_a_batched_generate_answers_as_one_at_a_time_does(smolvlm):
    requests = [([image], "judge this portrait") for image in CANDIDATES]
    batched = ask_json_batch(smolvlm, requests, JUDGE_ANSWER)
    assert batched == [ask_json(smolvlm, images, instruction, JUDGE_ANSWER) for images, instruction in requests]
    assert len({json.dumps(answer, sort_keys=True) for answer in batched}) > 1  # the images' answers differ: rows are not mixed up


async def test_validation_judges_its_candidates_in_one_call_with_the_verdicts_one_at_a_time_gives(settings, store, smolvlm):
    keys = [f"jobs/{JOB_ID}/candidate-{i}.png" for i in range(len(CANDIDATES))]
    for key, image in zip(keys, CANDIDATES):
        store.put_bytes(key, png(image), "image/png")
    settings.gating_checks = ["dimensions"]  # the coffee cup reaches the VLM too
    payload = {"jobId": JOB_ID, "attempt": 1, "parameters": PARAMETERS, "referenceImageKey": keys[0], "imageKeys": keys,
               "prompt": "a portrait", "expectedWidth": 256, "expectedHeight": 256}
    faces = FaceAnalyzer(settings.face_min_score)
    batched, separate = CountingVlm(smolvlm), CountingVlm(OneAtATime(smolvlm))
    together = await validate_step(settings, store, batched, faces)(payload, None, None)
    one_by_one = await validate_step(settings, store, separate, faces)(payload, None, None)
    assert [call["images"] for call in batched.calls] == [[1, 1, 1]]  # one call, three candidates
    assert together == one_by_one
    assert [c["judgement"]["status"] for c in together["candidates"]] == ["judged"] * 3


def test_the_openai_backend_sends_a_batch_as_concurrent_requests_and_keeps_their_order():
    def answer(body):  # each question's answer names the question, so a mix-up shows
        question = body["messages"][0]["content"][-1]["text"]
        return 200, json.dumps({"subject": question, "prompt": "p", "negative_prompt": "n"})

    server = ChatServer(answer, together=3)  # none is answered until all three are in hand
    backend = OpenAIBackend(server.url, "smolvlm2", None, 256, 10)
    try:
        schema = {"type": "object"}
        raws = backend.complete_batch([([ASTRONAUT], f"question {i}") for i in range(3)], schema, 0.0)
        assert [json.loads(raw)["subject"] for raw in raws] == ["question 0", "question 1", "question 2"]
        assert len(server.requests) == 3
    finally:
        backend.close()
        server.close()


def test_one_request_at_a_time_would_never_fill_the_batch():
    """The server double's own check: sequential requests leave it waiting, so the test above fails
    if the backend stops sending them together."""
    server = ChatServer(lambda body: (200, "{}"), together=2)
    backend = OpenAIBackend(server.url, "smolvlm2", None, 256, 10)
    try:
        with pytest.raises(Exception, match="HTTP 504"):
            OneAtATime(backend).complete_batch([([ASTRONAUT], "a"), ([ASTRONAUT], "b")], {"type": "object"}, 0.0)
    finally:
        backend.close()
        server.close()
