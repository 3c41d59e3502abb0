"""A portrait of an identity through the generate step's real queue, with the tiny editing models:
the identity's trained LoRA comes from the deployment's bucket into the engine's adapter slots (and
its cache), the trigger phrase leads the instruction, and a LoRA that cannot be used fails the step
with its own code."""

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import FluxKontextPipeline, FluxTransformer2DModel, Flux2KleinPipeline, Flux2Transformer2DModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from PIL import Image, ImageDraw
from safetensors.torch import save

from apex_gpu_worker.cancellation import CancellationListener
from apex_gpu_worker.contracts.redis_keys import RedisKeys
from apex_gpu_worker.diffusion.engine import DiffusionEngine
from apex_gpu_worker.step_worker import start_step_worker
from apex_gpu_worker.steps.generate import generate_step
from apex_gpu_worker.training.model_inputs import Flux1Inputs, Flux2Inputs
from support.queue_runs import JOB_ID, run_step

IDENTITY = "66b1c2d3e4f5a60718293a4d"
LORA_KEY = f"identities/{IDENTITY}/lora.safetensors"
# Each tiny editing model with what train_identity would save for it: its transformer, the
# pipeline class that writes the file, and the modules its training targets.
FAMILIES = {
    "kontext": (FluxTransformer2DModel, FluxKontextPipeline, Flux1Inputs.lora_targets),
    "klein": (Flux2Transformer2DModel, Flux2KleinPipeline, Flux2Inputs.lora_targets),
}


def identity_lora(tiny_models, name: str, seed: int) -> bytes:
    """A LoRA file as train_identity writes one (every block linear, the pipeline's save_lora_weights),
    with non-zero weights strong enough to show in a 4-step tiny render."""
    transformer_class, pipeline_class, targets = FAMILIES[name]
    torch.manual_seed(seed)
    transformer = transformer_class.from_pretrained(tiny_models[name], subfolder="transformer")
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=targets))
    for param_name, param in transformer.named_parameters():
        if "lora_" in param_name:
            torch.nn.init.normal_(param, std=0.5)
    with tempfile.TemporaryDirectory() as folder:
        pipeline_class.save_lora_weights(folder, transformer_lora_layers=get_peft_model_state_dict(transformer), safe_serialization=True)
        return (Path(folder) / "pytorch_lora_weights.safetensors").read_bytes()


def photo(shade: int) -> bytes:
    image = Image.new("RGB", (300, 400), (shade, 60, 90))
    ImageDraw.Draw(image).ellipse((90, 60, 210, 200), fill=(230, 190, 160))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def portrait_engine(settings, tiny_models, request):
    settings.portrait_model = str(tiny_models[request.param])
    return DiffusionEngine(settings, settings.portrait_model, editing=True)


@pytest.fixture
async def portrait_worker(settings, store, portrait_engine):
    cancellations = CancellationListener(settings.redis_url, RedisKeys(settings.contracts_dir, settings.queue_prefix))
    await cancellations.start()
    worker = start_step_worker("generate", generate_step(settings, store, None, portrait_engine), settings, cancellations)
    yield worker
    await worker.close()
    await cancellations.close()


def portrait(store, attempt: int, identity: dict | None = None, photos: int = 2) -> dict:
    keys = [f"jobs/{JOB_ID}/reference.{i}.png" for i in range(photos)]
    for index, key in enumerate(keys):
        store.put_bytes(key, photo(40 + 100 * index), "image/png")
    payload = {"jobId": JOB_ID, "attempt": attempt, "prompt": "change the attire to a navy suit; keep the face", "seed": 7,
               "width": 256, "height": 256, "numImages": 1, "loras": [], "referenceImageKey": keys[0], "referenceImageKeys": keys,
               "outputPrefix": f"jobs/{JOB_ID}/attempts/{attempt}"}
    return {**payload, "identityLora": identity} if identity else payload


def rendered(store, job) -> tuple[np.ndarray, dict]:
    image = Image.open(io.BytesIO(store.get_bytes(job.returnvalue["images"][0]["key"])))
    return np.asarray(image.convert("RGB"), dtype=np.int16), json.loads(image.info["apex:generation"])


def failure_code(job) -> str:
    return json.loads(job.failedReason.split("\n", 1)[0])["code"]


@pytest.mark.parametrize("portrait_engine", ["kontext", "klein"], indirect=True)
async def test_the_identitys_lora_comes_from_the_bucket_and_the_trigger_phrase_leads_the_instruction(
        settings, store, tiny_models, portrait_engine, portrait_worker):
    store.put_bytes(LORA_KEY, identity_lora(tiny_models, settings.portrait_model.rsplit("/", 1)[-1], seed=5), "application/octet-stream")

    async def render(attempt: int, scale: float | None):
        identity = {"key": LORA_KEY, "triggerToken": "ohwx", "scale": scale} if scale is not None else None
        job, state = await run_step(settings, "generate", portrait(store, attempt, identity))
        assert state == "completed", job.failedReason
        return rendered(store, job)

    (plain, plain_meta), (off, off_meta), (on, on_meta) = await render(1, None), await render(2, 0.0), await render(3, 1.0)
    assert plain_meta["prompt"] == "change the attire to a navy suit; keep the face"
    assert on_meta["prompt"] == off_meta["prompt"] == "a photo of ohwx person, change the attire to a navy suit; keep the face"
    # Same seed, photos and instruction: only the LoRA's scale differs, so its weights reached the model.
    assert not np.array_equal(off, on)
    assert not np.array_equal(plain, on)
    assert portrait_engine.loras.stored_fetches == 1  # read once from the bucket, then its slot was reused


@pytest.mark.parametrize("portrait_engine", ["klein"], indirect=True)
async def test_a_second_job_uses_the_loaded_lora_and_a_rewritten_or_erased_one_is_not_served_from_the_cache(
        settings, store, tiny_models, portrait_engine, portrait_worker):
    identity = {"key": LORA_KEY, "triggerToken": "ohwx", "scale": 1.0}
    store.put_bytes(LORA_KEY, identity_lora(tiny_models, "klein", seed=5), "application/octet-stream")
    first, _ = await run_step(settings, "generate", portrait(store, 1, identity))
    second, _ = await run_step(settings, "generate", portrait(store, 2, identity))
    assert portrait_engine.loras.stored_fetches == 1  # the second job hit the cache
    assert np.array_equal(rendered(store, first)[0], rendered(store, second)[0])

    store.put_bytes(LORA_KEY, identity_lora(tiny_models, "klein", seed=6), "application/octet-stream")  # trained again
    third, state = await run_step(settings, "generate", portrait(store, 3, identity))
    assert state == "completed", third.failedReason
    assert portrait_engine.loras.stored_fetches == 2
    assert not np.array_equal(rendered(store, first)[0], rendered(store, third)[0])

    store._client.delete_object(Bucket=store.bucket, Key=LORA_KEY)  # the identity erased
    erased, state = await run_step(settings, "generate", portrait(store, 4, identity))
    assert state == "failed" and failure_code(erased) == "identity_lora_unusable"


UNUSABLE = {
    "no such object": None,
    "not safetensors": b"this is not a LoRA",
    "empty": b"",
    "safetensors without LoRA layers": save({"weight": torch.zeros(4, 4)}),
    "made for another model (kontext's on klein)": "kontext",
}


@pytest.mark.parametrize("portrait_engine", ["klein"], indirect=True)
@pytest.mark.parametrize("content", UNUSABLE.values(), ids=UNUSABLE.keys())
async def test_an_unusable_identity_lora_fails_the_step_permanently_with_its_code(settings, store, tiny_models, portrait_engine, portrait_worker, content):
    if content is not None:
        store.put_bytes(LORA_KEY, identity_lora(tiny_models, content, seed=5) if isinstance(content, str) else content, "application/octet-stream")
    job, state = await run_step(settings, "generate", portrait(store, 1, {"key": LORA_KEY, "triggerToken": "ohwx", "scale": 1.0}), {"attempts": 3})
    assert state == "failed" and job.attemptsMade == 1  # permanent: not retried
    assert failure_code(job) == "identity_lora_unusable"
    assert "/tmp" not in job.failedReason and "apex-identity-lora" not in job.failedReason  # no server path
    # The engine still renders afterwards, without the LoRA.
    job, state = await run_step(settings, "generate", portrait(store, 2))
    assert state == "completed", job.failedReason


def test_under_torch_compile_identity_loras_are_hotswapped_into_the_slots_without_recompiling(settings, store, tiny_models):
    """Every block linear an identity's LoRA trains is a slot target, so it swaps in like a Hub LoRA."""
    import torch._dynamo

    from apex_gpu_worker.diffusion.engine import GenerationRequest
    from apex_gpu_worker.diffusion.loras import StoredLoraRequest

    settings.compile, settings.lora_max_loaded, settings.lora_max_rank = True, 2, 8
    engine = DiffusionEngine(settings, str(tiny_models["klein"]), editing=True)
    reference = Image.open(io.BytesIO(photo(40))).convert("RGB").resize((128, 128))
    loras = []
    for index in range(3):  # more than the 2 slots
        key = f"identities/{IDENTITY}/lora.{index}.safetensors"
        store.put_bytes(key, identity_lora(tiny_models, "klein", seed=20 + index), "application/octet-stream")
        loras.append(StoredLoraRequest(key, store.etag(key), 1.0, store.get_bytes))

    def render(lora) -> bytes:
        request = GenerationRequest("a photo of ohwx person", 3, 128, 128, 1, 2, 1.0, [lora], (reference,))
        return engine.generate(request, lambda step, total: False).images[0].tobytes()

    outputs = [render(loras[0]), render(loras[1])]  # compiles, fills both slots
    torch._dynamo.config.error_on_recompile = True
    try:
        outputs.append(render(loras[2]))  # evicts one and hotswaps into its slot
    finally:
        torch._dynamo.config.error_on_recompile = False
    assert len(set(outputs)) == 3
    assert engine.loras.stored_fetches == 3
