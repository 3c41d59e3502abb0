"""caption_identity through a real queue: the tiny in-process VLM (random weights, so only the
captions' shape can be checked), and a real OpenAI-compatible server that answers what the test says
(what a caption is made of, and what happens when an answer is unusable)."""

import io
import json
import logging

import pytest
from PIL import Image
from skimage import data

from apex_gpu_worker.identity.captions import MAX_CAPTION, caption
from apex_gpu_worker.runtime import WorkerRuntime, build_processors
from support.chat_server import ChatServer
from support.queue_runs import run_step

IDENTITY_ID = "65a1b2c3d4e5f60718293a4c"
TOKEN = "ohwx"
PHRASE = "a photo of ohwx person"


def put_photos(store, count: int) -> list[dict]:
    """Framed squares as prepare_identity writes them, each a different picture."""
    pictures = [data.astronaut(), data.coffee(), data.chelsea()]
    photos = []
    for index in range(count):
        out = io.BytesIO()
        Image.fromarray(pictures[index % len(pictures)]).resize((128, 128)).save(out, format="PNG")
        key = f"identities/{IDENTITY_ID}/prepared/{index}.png"
        store.put_bytes(key, out.getvalue(), "image/png")
        photos.append({"key": key})
    return photos


def payload(photos: list[dict]) -> dict:
    return {"identityId": IDENTITY_ID, "photos": photos, "triggerToken": TOKEN}


async def test_the_tiny_vlm_captions_every_photo_around_the_trigger_token_in_order(settings, store):
    photos = put_photos(store, 2)
    runtime = await WorkerRuntime.start(settings, build_processors(settings, ("caption_identity",)))
    try:
        job, state = await run_step(settings, "caption_identity", payload(photos))
    finally:
        await runtime.stop()
    assert state == "completed", job.failedReason
    result = job.returnvalue["photos"]
    assert [p["key"] for p in result] == [p["key"] for p in photos]
    for photo in result:
        assert photo["caption"].startswith(f"{PHRASE}, ")  # the phrase, then the VLM's description (noise here)
        assert 0 < len(photo["caption"]) <= MAX_CAPTION
        assert "\n" not in photo["caption"]


ANSWER = {"clothing": "navy suit and white shirt", "setting": "grey studio backdrop", "lighting": "soft window light",
          "framing": "head and shoulders", "expression": "slight smile"}


@pytest.fixture
def served_vlm(settings):
    """The worker's VLM is a real OpenAI-compatible server answering the test's script."""
    servers = []

    def serve(answers: list[str]) -> ChatServer:
        server = ChatServer([(200, answer) for answer in answers])
        settings.vlm_backend, settings.vlm_base_url = "openai", server.url
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.close()


async def run_captions(settings, photos) -> list[str]:
    runtime = await WorkerRuntime.start(settings, build_processors(settings, ("caption_identity",)))
    try:
        job, state = await run_step(settings, "caption_identity", payload(photos))
    finally:
        await runtime.stop()
    assert state == "completed", job.failedReason
    return [p["caption"] for p in job.returnvalue["photos"]]


async def test_a_caption_is_the_trigger_phrase_then_what_is_not_the_person(settings, store, served_vlm):
    server = served_vlm([json.dumps(ANSWER), json.dumps({**ANSWER, "clothing": "red\njumper\x00 ", "expression": " laughing."})])
    captions = await run_captions(settings, put_photos(store, 2))
    assert captions == [
        "a photo of ohwx person, navy suit and white shirt, grey studio backdrop, soft window light, head and shoulders, slight smile",
        "a photo of ohwx person, red jumper, grey studio backdrop, soft window light, head and shoulders, laughing",
    ]
    # Each photo went to the VLM with the question that keeps the face out of the words.
    assert len(server.requests) == 2
    question = json.dumps(server.requests[0]["body"]["messages"])
    assert "must NOT be described" in question and "image_url" in question


# Answers the caption cannot use, twice (ask_json retries once): each photo falls back to the phrase alone.
UNUSABLE = {
    "not JSON": "a man in a suit",
    "a field missing": json.dumps({k: v for k, v in ANSWER.items() if k != "setting"}),
    "a field too long": json.dumps({**ANSWER, "clothing": "x" * 101}),
    "an extra field": json.dumps({**ANSWER, "hair": "short and dark"}),
    "not an object": json.dumps(["navy suit"]),
}


@pytest.mark.parametrize("answer", UNUSABLE.values(), ids=UNUSABLE.keys())
async def test_an_unusable_answer_leaves_the_plain_caption_and_says_so_without_the_photo(settings, store, served_vlm, caplog, answer):
    served_vlm([answer, answer, json.dumps(ANSWER)])
    with caplog.at_level(logging.WARNING, logger="apex_gpu_worker"):
        captions = await run_captions(settings, put_photos(store, 2))
    assert captions == [PHRASE, f"{PHRASE}, navy suit and white shirt, grey studio backdrop, soft window light, head and shoulders, slight smile"]
    fallback = [r for r in caplog.records if r.getMessage().startswith("caption without a description")]
    assert [(r.fields["identityId"], r.fields["photo"]) for r in fallback] == [(IDENTITY_ID, 0)]
    logged = " ".join(json.dumps(r.__dict__, default=str) for r in caplog.records)
    assert "a man in a suit" not in logged and "short and dark" not in logged and f"{IDENTITY_ID}/prepared" not in logged


# caption(): the phrase first, every part cleaned, the whole within the contract's 500 characters.
BOUNDED = {
    "parts in order": (["blue coat", "park"], f"{PHRASE}, blue coat, park"),
    "empty and blank parts left out": (["", "  ", "\n\t", "park"], f"{PHRASE}, park"),
    "control characters and runs of spaces": (["blue\x00  coat\r\n", ", park;"], f"{PHRASE}, blue coat, park"),
    "no parts": ([], PHRASE),
}


@pytest.mark.parametrize(("parts", "expected"), BOUNDED.values(), ids=BOUNDED.keys())
def test_caption_cleans_its_parts(parts, expected):
    assert caption(TOKEN, parts) == expected


@pytest.mark.parametrize("parts", [["word " * 200], ["a" * 600], ["x" * 100] * 10, ["é" * 300, "b" * 300]])
def test_caption_never_exceeds_the_contracts_bound(parts):
    text = caption("a" * 32, parts)
    assert len(text) <= MAX_CAPTION and text.startswith(f"a photo of {'a' * 32} person, ")
