"""One super-resolution model: Real-ESRGAN, or any other image-to-image architecture spandrel reads
from a weight file (ESRGAN, SwinIR, HAT, ...), loaded once, resident on the device, run in tiles.
A file that is missing, corrupt, foreign or not an upscaler stops the worker at start, naming the
setting."""

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..devices import resolve_device
from ..settings import WorkerSettings
from .upscale_tiles import upscale_in_tiles

log = logging.getLogger("apex_gpu_worker.upscale")

SETTING = "APEX_GPU_UPSCALER_MODELS"
# Pickled .pth files are read by spandrel's restricted unpickler (tensors only, no code); TorchScript
# (.pt) would run code, so it is not accepted.
WEIGHT_SUFFIXES = (".pth", ".safetensors")


def weight_files(entry: str, token: str | None) -> list[tuple[Path, str]]:
    """The weight files one entry of the setting names, each with the name callers see: a file; a
    folder's every weight file; or a file in a Hub repo, written owner/repo/path/in/repo.pth
    (fetched once into the Hugging Face cache)."""
    path = Path(entry)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        if not files:
            raise SystemExit(f"{SETTING}: the folder {entry} holds no {' or '.join(WEIGHT_SUFFIXES)} file")
        return [(file, file.name) for file in files]
    if path.suffix not in WEIGHT_SUFFIXES:
        raise SystemExit(f"{SETTING}: {entry} must be a {' or '.join(WEIGHT_SUFFIXES)} file, a folder of them, or owner/repo/file.pth on the Hub")
    if path.is_file():
        return [(path, path.name)]
    parts = entry.split("/")
    if path.is_absolute() or len(parts) < 3:
        raise SystemExit(f"{SETTING}: {entry} does not exist (a Hub file is written owner/repo/file.pth)")
    from huggingface_hub import hf_hub_download

    try:
        return [(Path(hf_hub_download("/".join(parts[:2]), "/".join(parts[2:]), token=token)), entry)]
    except Exception as err:
        raise SystemExit(f"{SETTING}: {entry} could not be had from the Hugging Face Hub: {err}") from err


def upscaler_dtype(setting: str, device: str, supports_half: bool, supports_bfloat16: bool) -> torch.dtype:
    """`auto` is float16 on a GPU (ESRGAN's usual precision), else bfloat16, as the architecture
    allows; float32 on the CPU. A half precision the architecture lacks is refused."""
    if setting == "auto":
        if not device.startswith("cuda"):
            return torch.float32
        return torch.float16 if supports_half else torch.bfloat16 if supports_bfloat16 else torch.float32
    dtype = getattr(torch, setting)
    if (dtype is torch.float16 and not supports_half) or (dtype is torch.bfloat16 and not supports_bfloat16):
        raise SystemExit(f"APEX_GPU_UPSCALER_DTYPE: {setting} is not supported by this upscaler's architecture; use auto or float32")
    return dtype


class SuperResolutionModel:
    def __init__(self, file: Path, name: str, settings: WorkerSettings):
        from spandrel import ImageModelDescriptor, ModelLoader, ModelTiling

        started = time.perf_counter()
        self.name = name
        try:
            descriptor = ModelLoader().load_from_file(file)
        except Exception as err:
            raise SystemExit(f"{SETTING}: {name} is not a model spandrel can read ({type(err).__name__}: {err})") from err
        if not isinstance(descriptor, ImageModelDescriptor) or descriptor.scale < 2 or (descriptor.input_channels, descriptor.output_channels) != (3, 3):
            raise SystemExit(f"{SETTING}: {name} is a {descriptor.architecture.name} {descriptor.purpose} model of scale {descriptor.scale}; "
                             "an upscaler is an RGB super-resolution model of scale 2 or more")
        self.scale = descriptor.scale
        self.architecture = descriptor.architecture.name
        self.device = resolve_device(settings.device)
        self.dtype = upscaler_dtype(settings.upscaler_dtype, self.device, descriptor.supports_half, descriptor.supports_bfloat16)
        self.descriptor = descriptor.to(self.device, self.dtype).eval()
        # Architectures that see the whole image at once (spandrel says so) are not tiled.
        self.tile = 0 if descriptor.tiling is ModelTiling.INTERNAL else settings.upscaler_tile
        self.overlap = settings.upscaler_tile_overlap
        self.align = descriptor.size_requirements.multiple_of
        log.info("upscaler loaded", extra={"fields": {
            "model": name, "architecture": self.architecture, "scale": self.scale, "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."), "tile": self.tile, "seconds": round(time.perf_counter() - started, 2)}})

    def run(self, image: Image.Image, before_tile: Callable[[], None] = lambda: None) -> Image.Image:
        """One pass: the image `scale` times larger. Blocking; call it from a worker thread."""
        pixels = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).unsqueeze(0)
        with torch.inference_mode():
            tensor = pixels.to(self.device, self.dtype).div_(255)
            output = upscale_in_tiles(self.descriptor, tensor, self.scale, self.tile, self.overlap, self.align, before_tile)
            array = output[0].permute(1, 2, 0).float().clamp_(0, 1).mul_(255).round_().to(torch.uint8).cpu().numpy()
        return Image.fromarray(array)
