"""Portraits that keep the person: the generate step renders a portrait attempt with the
image-editing model from the reference photo, and the prompt step writes that model an edit
instruction. Tiny random-weight models, loaded through the production path."""

import base64
import io
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pydantic import SecretStr

from apex_gpu_worker.cancellation import CancellationListener
from apex_gpu_worker.contracts.redis_keys import RedisKeys
from apex_gpu_worker.diffusion.engine import DiffusionEngine, parameter_bytes
from apex_gpu_worker.diffusion.reference import prepare_reference, reference_crop
from apex_gpu_worker.step_worker import start_step_worker
from apex_gpu_worker.steps.generate import generate_step
from apex_gpu_worker.steps.prompt import prompt_step
from apex_gpu_worker.vlm.openai_backend import OpenAIBackend
from support.chat_server import ChatServer
from support.loras import publish_lora
from support.queue_runs import JOB_ID, PARAMETERS, run_step
from support.sealing import seal

PORTRAIT = {
    "jobId": JOB_ID,
    "attempt": 1,
    "prompt": "change the attire to a navy suit and the background to a studio grey; keep the face",
    "seed": 7,
    "width": 256,
    "height": 320,
    "numImages": 1,
    "loras": [],
    "outputPrefix": f"jobs/{JOB_ID}/attempts/1",
}


def photo(kind: str) -> bytes:
    """Two clearly different synthetic reference photos."""
    image = Image.new("RGB", (300, 400), (40, 60, 90) if kind == "dark" else (220, 200, 170))
    draw = ImageDraw.Draw(image)
    if kind == "dark":
        draw.ellipse((90, 60, 210, 200), fill=(230, 190, 160))
    else:
        draw.rectangle((20, 250, 280, 390), fill=(10, 120, 40))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def engines(settings, tiny_models, request):
    """The text-to-image model and an editing model (Kontext unless the test names another)."""
    settings.portrait_model = str(tiny_models[getattr(request, "param", "kontext")])
    text = DiffusionEngine(settings, settings.flux_model)
    return text, DiffusionEngine(settings, settings.portrait_model, editing=True, share_with=text)


@pytest.fixture
async def portrait_worker(settings, store, engines):
    cancellations = CancellationListener(settings.redis_url, RedisKeys(settings.contracts_dir, settings.queue_prefix))
    await cancellations.start()
    worker = start_step_worker("generate", generate_step(settings, store, *engines), settings, cancellations)
    yield worker
    await worker.close()
    await cancellations.close()


def pixels(store, job) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(store.get_bytes(job.returnvalue["images"][0]["key"]))).convert("RGB"), dtype=np.int16)


@pytest.mark.parametrize("engines", ["kontext", "klein"], indirect=True)
async def test_the_reference_photo_reaches_the_editing_model(settings, store, engines, portrait_worker):
    for name in ("dark", "light"):
        store.put_bytes(f"jobs/{JOB_ID}/{name}.png", photo(name), "image/png")

    async def render(name: str, attempt: int):
        payload = {**PORTRAIT, "attempt": attempt, "referenceImageKey": f"jobs/{JOB_ID}/{name}.png", "outputPrefix": f"jobs/{JOB_ID}/attempts/{attempt}"}
        job, state = await run_step(settings, "generate", payload)
        assert state == "completed", job.failedReason
        return job

    dark, light, dark_again = await render("dark", 1), await render("light", 2), await render("dark", 3)
    # Same seed and instruction: only the reference differs, so the pixels must.
    changed = np.count_nonzero(np.abs(pixels(store, dark) - pixels(store, light)).max(axis=2)) / (256 * 320)
    assert changed > 0.2  # measured: 0.88 of the pixels with the tiny Kontext, 0.62 with the tiny Klein
    assert np.array_equal(pixels(store, dark), pixels(store, dark_again))
    image = Image.open(io.BytesIO(store.get_bytes(dark.returnvalue["images"][0]["key"])))
    assert image.size == (256, 320)  # the requested size, not the model's preferred one
    assert json.loads(image.info["apex:generation"])["model"] == Path(settings.portrait_model).name  # the editing model rendered it


@pytest.mark.parametrize(("engines", "second_photo_counts"), [("klein", True), ("kontext", False)], indirect=["engines"])
async def test_a_list_taking_model_renders_from_every_reference_and_a_single_image_one_from_the_first(
        settings, store, engines, portrait_worker, second_photo_counts):
    for name in ("dark", "light"):
        store.put_bytes(f"jobs/{JOB_ID}/{name}.png", photo(name), "image/png")
    first = f"jobs/{JOB_ID}/dark.png"

    async def render(keys: list[str], attempt: int):
        payload = {**PORTRAIT, "attempt": attempt, "referenceImageKey": keys[0], "referenceImageKeys": keys,
                   "outputPrefix": f"jobs/{JOB_ID}/attempts/{attempt}"}
        job, state = await run_step(settings, "generate", payload)
        assert state == "completed", job.failedReason
        return pixels(store, job)

    alone, with_second = await render([first], 1), await render([first, f"jobs/{JOB_ID}/light.png"], 2)
    # Same seed, instruction and first photo: only the second photo differs.
    assert (not np.array_equal(alone, with_second)) is second_photo_counts
    if second_photo_counts:  # and the first still counts: another first photo, another portrait
        assert not np.array_equal(with_second, await render([f"jobs/{JOB_ID}/light.png", first], 3))


async def test_an_identity_lora_is_applied_on_top_of_the_editing_model_and_a_bad_one_fails_clearly(settings, store, tiny_models, portrait_worker):
    publish_lora(tiny_models["kontext"], settings.lora_cache_dir, "acme/face-of-jane", "jane.safetensors", seed=3)
    store.put_bytes(f"jobs/{JOB_ID}/dark.png", photo("dark"), "image/png")
    base = {**PORTRAIT, "referenceImageKey": f"jobs/{JOB_ID}/dark.png"}
    plain, _ = await run_step(settings, "generate", base)
    lora = [{"repo": "acme/face-of-jane", "weight_name": "jane.safetensors", "scale": 1.0}]
    with_lora, state = await run_step(settings, "generate", {**base, "attempt": 2, "outputPrefix": f"jobs/{JOB_ID}/attempts/2", "loras": lora})
    assert state == "completed", with_lora.failedReason
    assert not np.array_equal(pixels(store, plain), pixels(store, with_lora))
    bad, state = await run_step(settings, "generate", {**base, "attempt": 3, "loras": [{"repo": "nobody/no-such-face", "weight_name": "x.safetensors", "scale": 1}]})
    assert state == "failed" and "nobody/no-such-face" in bad.failedReason


async def test_a_portrait_jobs_sealed_token_is_opened_for_its_job_only(settings, store, portrait_worker):
    key = base64.b64encode(os.urandom(32)).decode()
    settings.secrets_key = SecretStr(key)  # the worker reads the same settings object
    store.put_bytes(f"jobs/{JOB_ID}/dark.png", photo("dark"), "image/png")
    base = {**PORTRAIT, "referenceImageKey": f"jobs/{JOB_ID}/dark.png"}
    opened, state = await run_step(settings, "generate", {**base, "secrets": seal(key, JOB_ID, {"hf_token": "hf_private"})})
    assert state == "completed", opened.failedReason
    other_job = "0" * 24
    refused, state = await run_step(settings, "generate", {**base, "attempt": 2, "secrets": seal(key, other_job, {"hf_token": "hf_private"})})
    assert state == "failed" and "sealed secrets cannot be opened" in refused.failedReason
    assert "hf_private" not in refused.failedReason


async def test_a_generation_without_a_reference_is_rendered_by_the_text_to_image_model(settings, store, portrait_worker):
    job, state = await run_step(settings, "generate", {**PORTRAIT, "prompt": "a lighthouse"})
    assert state == "completed", job.failedReason
    text = Image.open(io.BytesIO(store.get_bytes(job.returnvalue["images"][0]["key"]))).info["apex:generation"]
    assert json.loads(text)["model"] == "flux"


def test_kontext_shares_the_text_encoders_and_vae_of_the_text_to_image_model(engines):
    text, portraits = engines
    assert portraits.shared == ["text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae"]
    for name in portraits.shared:
        assert getattr(portraits.pipe, name) is getattr(text.pipe, name)
    assert portraits.pipe.transformer is not text.pipe.transformer
    shared = [getattr(portraits.pipe, name) for name in portraits.shared]
    assert parameter_bytes(portraits.pipe, exclude=shared) < parameter_bytes(portraits.pipe)


@pytest.mark.parametrize("engines", ["klein"], indirect=True)
def test_klein_shares_nothing_with_flux_1_its_encoders_differ(engines):
    text, portraits = engines
    assert portraits.shared == [] and portraits.pipe.vae is not text.pipe.vae


def test_a_text_to_image_model_is_refused_as_the_portrait_model(settings):
    with pytest.raises(SystemExit, match="must be an image-editing pipeline"):
        DiffusionEngine(settings, settings.flux_model, editing=True)


@pytest.mark.parametrize(("size", "face", "crop"), [
    ((1000, 1000), None, (100, 0, 900, 1000)),  # centred when no face was found
    ((1000, 1000), (50, 100, 250, 300), (0, 0, 800, 1000)),  # a face near the edge: the crop stops at the edge
    ((800, 2000), (300, 1500, 500, 1700), (0, 1000, 800, 2000)),  # a tall photo: the crop follows the face down
    ((2000, 800), (1500, 300, 1700, 500), (1280, 0, 1920, 800)),  # a wide one: across to the face
])
def test_the_reference_is_cropped_to_the_output_aspect_around_the_face(size, face, crop):
    assert reference_crop(size, 400, 500, face) == crop
    left, top, right, bottom = crop
    assert (right - left) / (bottom - top) == pytest.approx(0.8, abs=0.01)
    assert prepare_reference(Image.new("RGB", size), 400, 500, face).size == (400, 500)


@pytest.mark.parametrize(("portrait_model", "says", "never"), [
    ("kontext", ["edit", "stay exactly as in the photo", "keep the person's face"], "text-to-image"),
    ("", ["text-to-image model (FLUX)", "describe the person"], "edit instructions"),
])
async def test_the_prompt_step_writes_for_the_model_that_renders_the_portrait(settings, store, portrait_model, says, never):
    settings.portrait_model = portrait_model
    store.put_bytes(f"jobs/{JOB_ID}/reference.png", photo("dark"), "image/png")
    answer = json.dumps({"subject": "short dark hair", "prompt": "make the suit navy", "negative_prompt": "blur"})
    server = ChatServer([(200, answer)])
    vlm = OpenAIBackend(server.url, "served", None, 256, 30)
    try:
        run = prompt_step(settings, store, vlm)
        payload = {"jobId": JOB_ID, "attempt": 2, "parameters": PARAMETERS, "referenceImageKey": f"jobs/{JOB_ID}/reference.png",
                   "previous": {"prompt": "make the suit grey", "feedback": "the tie is missing"}}
        result = await run(payload, SimpleNamespace(), SimpleNamespace(aborted=False))
    finally:
        vlm.close()
        server.close()
    assert result == {"prompt": "make the suit navy", "negativePrompt": "blur"}
    instruction = json.dumps(server.requests[0]["body"]["messages"]).lower()
    for phrase in says:
        assert phrase.lower() in instruction
    assert never.lower() not in instruction
    assert "the tie is missing" in instruction  # the rejected attempt's feedback refines it


def test_each_gpu_pool_loads_only_the_model_its_queues_need(settings):
    from apex_gpu_worker.contracts.steps import step_catalogue
    from apex_gpu_worker.runtime import diffusion_models

    ROLES = step_catalogue(settings.contracts_dir).roles

    assert set(ROLES["diffusion"]) == {"generate", "portrait-generate"}
    assert diffusion_models(settings, ("portrait-generate",)) == (False, True)  # (text-to-image, editing)
    assert diffusion_models(settings, ("generate",)) == (True, False)
    assert diffusion_models(settings, ("generate", "portrait-generate")) == (True, True)
    settings.portrait_model = ""  # no editing model: portraits fall back to the text-to-image one
    assert diffusion_models(settings, ("portrait-generate",)) == (True, False)


async def test_the_portrait_pool_renders_portraits_from_its_own_queue(settings, store):
    from apex_gpu_worker.runtime import WorkerRuntime, build_processors

    runtime = await WorkerRuntime.start(settings, build_processors(settings, ("portrait-generate",)))
    try:
        store.put_bytes(f"jobs/{JOB_ID}/dark.png", photo("dark"), "image/png")
        job, state = await run_step(settings, "portrait-generate", {**PORTRAIT, "referenceImageKey": f"jobs/{JOB_ID}/dark.png"})
        assert state == "completed", job.failedReason
        text = Image.open(io.BytesIO(store.get_bytes(job.returnvalue["images"][0]["key"]))).info["apex:generation"]
        assert json.loads(text)["model"] == Path(settings.portrait_model).name
        job, state = await run_step(settings, "portrait-generate", {**PORTRAIT, "attempt": 2})
        assert state == "failed" and "no reference photo" in job.failedReason
    finally:
        await runtime.stop()
