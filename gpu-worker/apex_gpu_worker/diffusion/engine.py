"""The resident FluxPipeline: loaded once, then one generation at a time, called from a worker
thread so the asyncio loop keeps renewing BullMQ locks during a long denoise."""

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from bullmq import UnrecoverableError
from diffusers import FluxPipeline
from PIL import Image

from ..devices import resolve_device, resolve_dtype
from ..settings import WorkerSettings
from .loras import LoraRegistry, LoraRequest

log = logging.getLogger("apex_gpu_worker.flux")


class GenerationCancelled(UnrecoverableError):
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
    loras: list[LoraRequest]


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


class FluxEngine:
    def __init__(self, settings: WorkerSettings):
        self.settings = settings
        self.device = resolve_device(settings.device)
        started = time.perf_counter()
        self.pipe = FluxPipeline.from_pretrained(settings.flux_model, dtype=resolve_dtype(settings.dtype, self.device))
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        token = settings.hf_token.get_secret_value() if settings.hf_token else None
        self.loras = LoraRegistry(self.pipe, settings.lora_cache_dir, token, settings.lora_max_loaded)
        self.loras.load_base([LoraRequest(l.repo, l.weight_name, l.scale) for l in settings.base_loras])
        if settings.compile:
            self.loras.reserve_slots_for_hotswap(settings.lora_max_rank)
            # In place (nn.Module.compile): the pipeline keeps its transformer class, which LoRA
            # loading and set_adapters look up.
            self.pipe.transformer.compile(fullgraph=False)
        self.load_seconds = time.perf_counter() - started
        self._lock = threading.Lock()
        log.info("FLUX pipeline loaded", extra={"fields": {"model": settings.flux_model, "device": self.device,
                                                          "seconds": round(self.load_seconds, 2)}})

    def generate(self, request: GenerationRequest, on_step: StepCallback) -> Generation:
        """Renders at the native size for the request; blocking, one generation at a time."""
        width, height = native_size(request.width, request.height, self.settings.native_max_megapixels)

        def after_step(pipe, step: int, _timestep, tensors: dict) -> dict:
            if on_step(step + 1, request.steps):
                pipe._interrupt = True  # diffusers stops before the next step
            return tensors

        with self._lock:
            started = time.perf_counter()
            self.loras.activate(request.loras)
            activated = time.perf_counter()
            generator = torch.Generator(device="cpu").manual_seed(request.seed)
            with torch.inference_mode():
                output = self.pipe(
                    request.prompt,
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
