"""A resident diffusers pipeline: loaded once, then one generation at a time, called from a worker
thread so the asyncio loop keeps renewing BullMQ locks during a long denoise. The worker keeps two:
the text-to-image model of /generations, and the image-editing model that renders portraits from
the person's own photo. Each pipeline's class comes from its folder's model_index.json."""

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from ..contracts.step_errors import ContractViolation, StepCancelled
from ..devices import resolve_device, resolve_dtype
from ..settings import WorkerSettings, model_name
from .loras import HUB_HOTSWAP_TARGETS, IDENTITY_HOTSWAP_TARGETS, AnyLoraRequest, LoraRegistry, LoraRequest
from .quantization import check_quantization, quantize_transformer
from .step_cache import enable_step_cache, fresh_step_cache

log = logging.getLogger("apex_gpu_worker.diffusion")

@dataclass(frozen=True)
class EditingPipeline:
    # What else its __call__ needs to render at the requested size, given (width, height).
    options: Callable[[int, int], dict]
    # How many reference photos its `image=` takes: more than one means a list.
    max_references: int = 1


# Pipelines that take the reference photo as input, `image=` (FLUX.1 Kontext [dev]: FLUX.1-dev
# licence; FLUX.2 [klein] and Qwen-Image-Edit: Apache-2.0). Kontext otherwise rescales the output to
# ~1 MP and the reference to its preferred resolutions (the reference is already prepared at the
# output size). FLUX.2 klein takes a list of references, up to 4 as BFL documents it; the others get
# one (Qwen-Image-Edit-Plus takes a list too, but its multi-image use is not tested here: one, as before).
EDITING_PIPELINES: dict[str, EditingPipeline] = {
    "FluxKontextPipeline": EditingPipeline(lambda width, height: {"max_area": width * height, "_auto_resize": False}),
    "Flux2KleinPipeline": EditingPipeline(lambda width, height: {}, max_references=4),
    "QwenImageEditPlusPipeline": EditingPipeline(lambda width, height: {}),
}
# Components FLUX.1 Kontext [dev] ships identical to FLUX.1 [dev]: loaded once when both are resident.
# A tokenizer has no config to compare: it is shared with the text encoder it belongs to.
SHAREABLE_COMPONENTS = ("text_encoder", "text_encoder_2", "vae")
TOKENIZERS = {"tokenizer": "text_encoder", "tokenizer_2": "text_encoder_2"}


class GenerationCancelled(StepCancelled):
    """The job was cancelled between two denoising steps."""


@dataclass(frozen=True)
class GenerationRequest:
    prompt: str
    seed: int
    width: int
    height: int
    num_images: int
    steps: int
    guidance: float
    loras: list[AnyLoraRequest]  # the Hub's, then an identity's own from the bucket
    # The person's photos, already prepared for the model (prepare_reference), the first one first;
    # editing models only. One that takes one image renders from the first.
    references: tuple[Image.Image, ...] = ()


@dataclass(frozen=True)
class Generation:
    images: list[Image.Image]
    lora_seconds: float  # loading and activating adapters for this request
    denoise_seconds: float  # text encoding, denoising and VAE decoding


# Called after every denoising step with (step, total); returns True to stop the generation.
StepCallback = Callable[[int, int], bool]


def native_size(width: int, height: int, max_megapixels: float) -> tuple[int, int]:
    """The size the model renders: the requested one, or the same aspect scaled down to the model's
    native budget (sides multiples of 16)."""
    scale = min(1.0, math.sqrt(max_megapixels * 1_000_000 / (width * height)))
    return max(16, int(width * scale) // 16 * 16), max(16, int(height * scale) // 16 * 16)


def model_folder(model: str, token: str | None) -> Path:
    """A local folder with the model's model_index.json and component configs: the folder itself, or
    for a Hub id its snapshot with just those files (fetched once into the Hugging Face cache; the
    weights follow in from_pretrained)."""
    if Path(model).is_dir():
        return Path(model)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(model, allow_patterns=["model_index.json", "*/config.json"], token=token))


def pipeline_class(folder: Path) -> str:
    return json.loads((folder / "model_index.json").read_text())["_class_name"]


def shared_components(loaded: DiffusionPipeline, folder: Path) -> dict:
    """The components of `loaded` that the folder `model` declares with the same class and config, to
    pass to its from_pretrained instead of loading a second copy. Configs are compared; that the
    weights are the same is the model family's promise (FLUX.1 Kontext [dev] ships FLUX.1 [dev]'s text
    encoders and VAE); APEX_GPU_SHARE_COMPONENTS=false turns sharing off."""
    declared = json.loads((folder / "model_index.json").read_text())
    shared = {}
    for name in SHAREABLE_COMPONENTS:
        component = getattr(loaded, name, None)
        if component is None or declared.get(name, [None, None])[1] != type(component).__name__:
            continue
        config_file = folder / name / "config.json"
        ours = _config(component)
        if not config_file.is_file() or ours is None or any(ours.get(k) != v for k, v in _config(json.loads(config_file.read_text())).items()):
            continue
        shared[name] = component
    for name, encoder in TOKENIZERS.items():
        tokenizer = getattr(loaded, name, None)
        if encoder in shared and tokenizer is not None and declared.get(name, [None, None])[1] == type(tokenizer).__name__:
            shared[name] = tokenizer
    return shared


def _config(component_or_dict) -> dict | None:
    config = component_or_dict if isinstance(component_or_dict, dict) else getattr(component_or_dict, "config", None)
    if config is None:
        return None
    data = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return {k: v for k, v in data.items() if not k.startswith("_") and k not in ("architectures", "transformers_version", "torch_dtype", "dtype")}


class DiffusionEngine:
    def __init__(self, settings: WorkerSettings, model: str, editing: bool = False, share_with: "DiffusionEngine | None" = None):
        self.settings = settings
        self.model = model
        self.device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, self.device)
        check_quantization(settings.quantize, self.device, dtype)  # before minutes of loading
        started = time.perf_counter()
        token = settings.hf_token.get_secret_value() if settings.hf_token else None
        folder = model_folder(model, token)
        cls = pipeline_class(folder)
        if editing and cls not in EDITING_PIPELINES:
            raise SystemExit(f"APEX_GPU_PORTRAIT_MODEL must be an image-editing pipeline ({', '.join(EDITING_PIPELINES)}); {model_name(model)} is a {cls}")
        self.editing = EDITING_PIPELINES[cls] if editing else None
        # How many of a request's reference photos this model uses (0: a text-to-image model).
        self.max_references = self.editing.max_references if self.editing else 0
        shared = shared_components(share_with.pipe, folder) if share_with and settings.share_components else {}
        self.pipe = DiffusionPipeline.from_pretrained(model, dtype=dtype, **shared)
        self.pipe.to(self.device)
        self.quantization = quantize_transformer(self.pipe.transformer, settings.quantize)
        self.step_cache = enable_step_cache(self.pipe.transformer, settings.portrait_step_cache if editing else "none",
                                            settings.portrait_step_cache_threshold)
        self.pipe.set_progress_bar_config(disable=True)
        self.loras = LoraRegistry(self.pipe, settings.lora_cache_dir, token, settings.lora_max_loaded, "portrait" if editing else "text")
        self.loras.load_base([LoraRequest(l.repo, l.weight_name, l.scale) for l in settings.base_loras])
        if settings.compile:
            self.loras.reserve_slots_for_hotswap(settings.lora_max_rank, IDENTITY_HOTSWAP_TARGETS if editing else HUB_HOTSWAP_TARGETS)
            # In place (nn.Module.compile): the pipeline keeps its transformer class, which LoRA
            # loading and set_adapters look up.
            self.pipe.transformer.compile(fullgraph=False)
        self.load_seconds = time.perf_counter() - started
        self.shared = sorted(shared)
        self._lock = share_with._lock if share_with else threading.Lock()  # one denoise at a time per device
        log.info("diffusion pipeline loaded", extra={"fields": {
            "model": model_name(model), "class": cls, "device": self.device, "seconds": round(self.load_seconds, 2),
            "shared": self.shared, "quantization": self.quantization, "step_cache": self.step_cache, "parameter_mb": round(parameter_bytes(self.pipe, exclude=shared.values()) / 2**20, 1)}})

    def generate(self, request: GenerationRequest, on_step: StepCallback) -> Generation:
        """Renders at the native size for the request; blocking, one generation at a time."""
        width, height = native_size(request.width, request.height, self.settings.native_max_megapixels)
        if self.editing and not request.references:
            raise ContractViolation("the portrait model renders from the reference photo, and the step has none")

        def after_step(pipe, step: int, _timestep, tensors: dict) -> dict:
            if on_step(step + 1, request.steps):
                pipe._interrupt = True  # diffusers stops before the next step
            return tensors

        reference = {"image": self._image_argument(request.references), **self.editing.options(width, height)} if self.editing else {}
        with self._lock:
            started = time.perf_counter()
            self.loras.activate(request.loras)
            activated = time.perf_counter()
            generator = torch.Generator(device="cpu").manual_seed(request.seed)
            with torch.inference_mode(), fresh_step_cache(self.pipe.transformer):
                output = self.pipe(
                    prompt=request.prompt,
                    **reference,
                    width=width,
                    height=height,
                    num_inference_steps=request.steps,
                    guidance_scale=request.guidance,
                    num_images_per_prompt=request.num_images,
                    generator=generator,
                    callback_on_step_end=after_step,
                )
            if getattr(self.pipe, "_interrupt", False):
                raise GenerationCancelled("generation cancelled")
            return Generation(output.images, activated - started, time.perf_counter() - activated)


    def warm(self) -> dict | None:
        """With APEX_GPU_COMPILE, torch.compile builds the transformer's graph on its first render
        (42 s for klein, 99 s for Kontext on an H100): one 2-step render at the native budget's
        square before the first job, so that job does not pay it. Other sizes and candidate counts
        still compile on their first use."""
        if not self.settings.compile:
            return None
        side = native_size(4096, 4096, self.settings.native_max_megapixels)[0]
        references = (Image.new("RGB", (side, side), "grey"),) if self.editing else ()
        request = GenerationRequest(prompt="a portrait", seed=0, width=side, height=side, num_images=1, steps=2,
                                    guidance=self.settings.default_guidance, loras=[], references=references)
        started = time.perf_counter()
        self.generate(request, lambda step, total: False)
        return {"model": model_name(self.model), "size": side, "seconds": round(time.perf_counter() - started, 2)}

    def _image_argument(self, references: tuple[Image.Image, ...]) -> Image.Image | list[Image.Image]:
        """A list of the references for a pipeline that takes several; the first alone otherwise, and
        for a single reference (the call as it always was)."""
        used = references[: self.max_references]
        return list(used) if len(used) > 1 else used[0]


def parameter_bytes(pipe: DiffusionPipeline, exclude=()) -> int:
    """Bytes of the pipeline's parameters, without the components it shares with another one."""
    skip = {id(c) for c in exclude}
    modules = [c for c in pipe.components.values() if isinstance(c, torch.nn.Module) and id(c) not in skip]
    return sum(p.numel() * p.element_size() for m in modules for p in m.parameters())
