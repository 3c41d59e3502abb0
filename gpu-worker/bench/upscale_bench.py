"""Real-ESRGAN x4 timing: the full RealESRGAN_x4plus architecture (RRDBNet: 64 features, 23 blocks,
growth 32) with random weights (the arithmetic is that of the real model), saved to a file and loaded
through the worker's own upscaler, bringing an 816x1024 render to 3264x4096 (4k) in the configured
tiles and precision. Seconds per image after a warm-up, and peak GPU memory. Prints JSON (and writes
it to --out).

    python -m bench.upscale_bench --out $OUT/upscale.json                # in gpu-worker/, on a GPU machine
    python -m bench.upscale_bench --tiny --device cpu --width 64 --height 80 --runs 1   # same path, CPU
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file
from skimage import data

from apex_gpu_worker.diffusion.upscale_plan import UpscalePlan
from apex_gpu_worker.diffusion.upscaler import Upscaler
from apex_gpu_worker.settings import WorkerSettings
from dev_support.tiny_models import real_esrgan

FULL_SIZE = {"num_feat": 64, "num_block": 23, "num_grow_ch": 32}  # RealESRGAN_x4plus
TINY = {"num_feat": 8, "num_block": 1, "num_grow_ch": 32}


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    defaults = WorkerSettings.model_fields
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="the tiny test architecture instead of the full one")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=defaults["upscaler_dtype"].default, choices=["auto", "bfloat16", "float16", "float32"])
    parser.add_argument("--tile", type=int, default=defaults["upscaler_tile"].default)
    parser.add_argument("--overlap", type=int, default=defaults["upscaler_tile_overlap"].default)
    parser.add_argument("--width", type=int, default=816, help="the render's size; the output is 4x")
    parser.add_argument("--height", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        torch.manual_seed(0)
        weights = Path(folder) / ("realesrgan-x4-tiny.safetensors" if args.tiny else "RealESRGAN_x4plus-random.safetensors")
        save_file(real_esrgan(4, **(TINY if args.tiny else FULL_SIZE)).state_dict(), weights)
        settings = WorkerSettings(device=args.device, upscaler_models=[str(weights)], upscaler_dtype=args.dtype,
                                  upscaler_tile=args.tile, upscaler_tile_overlap=args.overlap)
        upscaler = Upscaler.from_settings(settings)
    model = upscaler.models[0]
    width, height = args.width * 4, args.height * 4
    plan = UpscalePlan(args.width, args.height, 4)
    render = Image.fromarray(data.astronaut()).resize((args.width, args.height), Image.Resampling.LANCZOS)

    def timed() -> float:
        synchronize(model.device)
        started = time.perf_counter()
        images, _ = upscaler.to_size([render], width, height, plan)
        synchronize(model.device)
        assert images[0].size == (width, height)
        return time.perf_counter() - started

    timed()  # warm-up: kernels chosen, memory pools filled
    if model.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    seconds = [timed() for _ in range(args.runs)]
    result = {
        "device": torch.cuda.get_device_name() if model.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "model": "tiny" if args.tiny else "RealESRGAN_x4plus architecture (random weights)",
        "architecture": model.architecture, "scale": model.scale, "dtype": str(model.dtype).removeprefix("torch."),
        "tile": model.tile, "overlap": model.overlap,
        "input": f"{args.width}x{args.height}", "output": f"{width}x{height}",
        "seconds": round(sum(seconds) / len(seconds), 3), "runs": [round(s, 3) for s in seconds],
        "output_megapixels_per_second": round(width * height / 1e6 / (sum(seconds) / len(seconds)), 2),
    }
    if model.device.startswith("cuda"):
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["peak_reserved_gib"] = round(torch.cuda.max_memory_reserved() / 2**30, 2)
    print(json.dumps(result), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
