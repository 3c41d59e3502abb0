"""The tiny image-editing models (FLUX.1 Kontext and FLUX.2 [klein]) load through the production
path, take their reference image into the render, accept LoRAs, and let a step callback stop them."""

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, FluxKontextPipeline, Flux2KleinPipeline, Flux2Transformer2DModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from PIL import Image, ImageDraw

from tests.support.loras import publish_lora

SIZE = 64  # the smallest reference FLUX.2's image processor accepts
VISIBLE = 3  # levels of 255 in some pixel: a change that survives the PNG the worker uploads
PIPELINE_CLASSES = {"kontext": FluxKontextPipeline, "klein": Flux2KleinPipeline}
# Kontext otherwise resizes the reference to one of its ~1 MP training resolutions and scales the
# output to max_area (1024**2) whatever height and width say.
CALL_EXTRAS = {"kontext": {"max_area": SIZE * SIZE, "_auto_resize": False}, "klein": {}}


def gradient() -> Image.Image:
    ramp = np.linspace(0, 255, SIZE, dtype=np.uint8)
    return Image.fromarray(np.stack([np.tile(ramp, (SIZE, 1)), np.tile(ramp[:, None], (1, SIZE)),
                                     np.full((SIZE, SIZE), 128, np.uint8)], axis=-1))


def disc() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), (20, 20, 60))
    ImageDraw.Draw(image).ellipse((12, 12, SIZE - 12, SIZE - 12), fill=(240, 200, 40))
    return image


def load(tiny_models, name: str):
    pipe = DiffusionPipeline.from_pretrained(tiny_models[name])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render(pipe, name: str, reference: Image.Image, steps: int = 2, **kwargs) -> np.ndarray:
    """The pixels of one render, through the PIL output the worker encodes."""
    image = pipe(
        image=reference, prompt="make the background a sunny beach", height=SIZE, width=SIZE,
        num_inference_steps=steps, guidance_scale=1.0, generator=torch.Generator().manual_seed(0),
        max_sequence_length=32, **CALL_EXTRAS[name], **kwargs,
    ).images[0]
    return np.asarray(image, dtype=np.int16)


def publish_klein_lora(klein_dir, target, seed: int) -> None:
    """A non-zero peft adapter on the tiny FLUX.2 transformer, saved the way diffusers publishes one."""
    torch.manual_seed(seed)
    transformer = Flux2Transformer2DModel.from_pretrained(klein_dir, subfolder="transformer")
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    for param_name, param in transformer.named_parameters():
        if "lora_" in param_name:
            torch.nn.init.normal_(param, std=0.5)
    Flux2KleinPipeline.save_lora_weights(target, transformer_lora_layers=get_peft_model_state_dict(transformer),
                                         weight_name="w.safetensors")


@pytest.mark.parametrize("name", PIPELINE_CLASSES)
def test_the_folder_loads_through_diffusion_pipeline_as_its_own_class(tiny_models, name):
    assert type(load(tiny_models, name)) is PIPELINE_CLASSES[name]


@pytest.mark.parametrize("name", PIPELINE_CLASSES)
def test_the_reference_image_reaches_the_model(tiny_models, name):
    pipe = load(tiny_models, name)

    first, again, other = render(pipe, name, gradient()), render(pipe, name, gradient()), render(pipe, name, disc())

    assert first.shape == (SIZE, SIZE, 3)
    assert np.array_equal(first, again)
    assert np.abs(first - other).max() >= VISIBLE


def test_kontext_ships_the_flux_encoders_tokenizers_and_vae_byte_for_byte(tiny_models):
    flux, kontext = tiny_models["flux"], tiny_models["kontext"]
    for component in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "vae", "scheduler"):
        files = sorted(p.relative_to(flux) for p in (flux / component).iterdir())
        assert files == sorted(p.relative_to(kontext) for p in (kontext / component).iterdir())
        for file in files:
            assert (flux / file).read_bytes() == (kontext / file).read_bytes(), file
    weights = "transformer/diffusion_pytorch_model.safetensors"
    assert (flux / "transformer/config.json").read_text() == (kontext / "transformer/config.json").read_text()
    assert (flux / weights).read_bytes() != (kontext / weights).read_bytes()


def test_a_flux_lora_loads_into_kontext_from_the_hub_cache_and_changes_the_output(tiny_models, tmp_path):
    publish_lora(tiny_models["flux"], tmp_path, "acme/face-a", "a.safetensors", seed=1)
    pipe = load(tiny_models, "kontext")
    before = render(pipe, "kontext", gradient())

    pipe.load_lora_weights("acme/face-a", weight_name="a.safetensors", cache_dir=tmp_path, adapter_name="face")

    assert pipe.get_list_adapters() == {"transformer": ["face"]}
    assert np.abs(render(pipe, "kontext", gradient()) - before).max() >= VISIBLE


def test_a_lora_loads_into_klein_hotswaps_and_scales_to_nothing(tiny_models, tmp_path):
    publish_klein_lora(tiny_models["klein"], tmp_path / "a", seed=1)
    publish_klein_lora(tiny_models["klein"], tmp_path / "b", seed=2)
    pipe = load(tiny_models, "klein")
    before = render(pipe, "klein", gradient())
    pipe.enable_lora_hotswap(target_rank=8)

    pipe.load_lora_weights(tmp_path / "a", weight_name="w.safetensors", adapter_name="face")
    with_a = render(pipe, "klein", gradient())
    pipe.load_lora_weights(tmp_path / "b", weight_name="w.safetensors", adapter_name="face", hotswap=True)
    with_b = render(pipe, "klein", gradient())
    pipe.set_adapters(["face"], [0.0])

    assert pipe.get_list_adapters() == {"transformer": ["face"]}
    assert np.abs(with_a - before).max() >= VISIBLE
    assert np.abs(with_b - with_a).max() >= VISIBLE
    assert np.array_equal(render(pipe, "klein", gradient()), before)


@pytest.mark.parametrize("name", PIPELINE_CLASSES)
def test_a_step_callback_that_sets_interrupt_stops_the_denoising_loop(tiny_models, name):
    pipe = load(tiny_models, name)
    steps_seen = []

    def stop_after_first_step(pipeline, step, timestep, callback_kwargs):
        steps_seen.append(step)
        pipeline._interrupt = True
        return callback_kwargs

    image = render(pipe, name, gradient(), steps=3, callback_on_step_end=stop_after_first_step)

    assert steps_seen == [0]
    assert image.shape == (SIZE, SIZE, 3)  # an interrupted call still decodes what it has
