"""Brings renders to the requested size, and says how: with the configured super-resolution models,
passes of them (the largest scale that does not overshoot the factor, else the smallest one), then a
Lanczos fit for what rounding or an overshoot left; without one, a plain Lanczos resize, which adds
pixels but no detail. What it returns beside the images is the provenance that the job and
generation records keep."""

import threading
import time
from collections.abc import Callable

from PIL import Image

from ..contracts.payloads import Pixels
from ..settings import WorkerSettings
from .engine import GenerationCancelled
from .upscale_model import SETTING, SuperResolutionModel, weight_files
from .upscale_plan import UpscalePlan, plan_upscale


class Upscaler:
    def __init__(self, models: list[SuperResolutionModel]):
        scales = [m.scale for m in models]
        if len(set(scales)) < len(scales):
            raise SystemExit(f"{SETTING}: two models have the same scale ({', '.join(f'{m.name} x{m.scale}' for m in models)}); keep one per scale")
        self.models = sorted(models, key=lambda m: m.scale)
        self._lock = threading.Lock()  # one upscale at a time: tiles bound the memory of one, not of two

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> "Upscaler":
        token = settings.hf_token.get_secret_value() if settings.hf_token else None
        return cls([SuperResolutionModel(file, name, settings) for entry in settings.upscaler_models for file, name in weight_files(entry, token)])

    def plan(self, width: int, height: int, native_max_megapixels: float, minimum_factor: int = 1) -> UpscalePlan:
        return plan_upscale(width, height, native_max_megapixels, minimum_factor, by_model=bool(self.models))

    def passes(self, factor: float) -> list[SuperResolutionModel]:
        if not self.models:
            return []  # resized by Lanczos alone
        reached, chosen = 1, []
        while reached < factor:
            fitting = [m for m in self.models if reached * m.scale <= factor]
            model = fitting[-1] if fitting else self.models[0]
            chosen.append(model)
            reached *= model.scale
        return chosen

    def to_size(self, images: list[Image.Image], width: int, height: int, plan: UpscalePlan,
                should_stop: Callable[[], bool] = lambda: False) -> tuple[list[Image.Image], Pixels]:
        """Blocking; call it from a worker thread. `should_stop` is asked before every tile."""
        pixels: Pixels = {"nativeWidth": plan.native_width, "nativeHeight": plan.native_height, "method": "native", "factor": 1, "seconds": 0}
        if all(image.size == (width, height) for image in images):
            return images, pixels
        started = time.perf_counter()
        passes = self.passes(plan.factor)

        def before_tile() -> None:
            if should_stop():
                raise GenerationCancelled("generation cancelled")

        def upscaled(image: Image.Image) -> Image.Image:
            for model in passes:
                image = model.run(image, before_tile)
            return image if image.size == (width, height) else image.resize((width, height), Image.Resampling.LANCZOS)

        with self._lock:
            images = [upscaled(image) for image in images]
        if passes:
            pixels.update(method="super_resolution", upscalers=[{"model": m.name, "scale": m.scale} for m in passes])
        else:
            pixels["method"] = "resize"
        pixels.update(factor=plan.factor, seconds=round(time.perf_counter() - started, 3))
        return images, pixels
