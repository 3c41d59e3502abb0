"""Identity LoRA training through the worker's own loop (apex_gpu_worker.training): seconds per step
and peak memory for FLUX.2 [klein] 4B and FLUX.1 Kontext [dev] at full size with random bf16 weights,
at each training resolution, with and without gradient checkpointing; and what the default recipe
(TrainingRecipe(): 1,000 steps at rank 16) costs in total: encoding the photos once, then its steps
at the measured rate. A row that does not fit the GPU records that instead of a time.

    python -m bench.train_bench --out $OUT/train.json                                   # in gpu-worker/, on a GPU
    python -m bench.train_bench --tiny --sizes 64 --steps 2 --photos 2                   # the same code on a CPU
"""


import numpy as np
import torch
from PIL import Image
from skimage import data

from apex_gpu_worker.devices import resolve_device, resolve_dtype
from apex_gpu_worker.training.lora_trainer import LoraTrainer
from apex_gpu_worker.training.recipe import TrainingRecipe

from . import architectures, harness

DEFAULT = TrainingRecipe()


def photos(count: int, side: int) -> list[Image.Image]:
    """Different crops of the astronaut photo, as a person's several photos would differ."""
    full = data.astronaut()
    crops = [full[y:y + 400, x:x + 400] for y, x in [(0, 100), (20, 120), (40, 80), (10, 60), (60, 140), (30, 100)]]
    return [Image.fromarray(np.ascontiguousarray(crops[i % len(crops)])).resize((side, side)) for i in range(count)]


def measure(model: str, side: int, checkpointing: bool, args, device: str, dtype) -> dict:
    harness.start_fresh()
    row = {"model": model, "resolution": side, "gradient_checkpointing": checkpointing, "rank": args.rank, "photos": args.photos}
    pipe = architectures.diffusion_pipeline(model, device, dtype, args.tiny_dir, full_size=not args.tiny)
    recipe = TrainingRecipe(steps=args.warmup_steps + args.steps, rank=args.rank, resolution=side, gradient_checkpointing=checkpointing,
                            checkpoint_every=10_000, learning_rate=DEFAULT.learning_rate)
    try:
        encode_seconds, trainer = harness.timed(LoraTrainer, pipe, recipe, photos(args.photos, side), ["a photo of tok person"] * args.photos)
        for _ in range(args.warmup_steps):
            trainer.train_step()
        seconds, _ = harness.timed(lambda: [trainer.train_step() for _ in range(args.steps)])
        checkpoint_seconds, checkpoint = harness.timed(lambda: trainer.checkpoint().to_bytes())
        per_step = seconds / args.steps
        row.update({
            "class": type(pipe).__name__,
            "encode_photos_seconds": round(encode_seconds, 2),
            "seconds_per_step": round(per_step, 4),
            "checkpoint_seconds": round(checkpoint_seconds, 3),
            "checkpoint_mib": round(len(checkpoint) / 2**20, 1),
            "peak_memory_gib": harness.peak_memory_gib(),
            # GPU time only: encoding, steps and checkpoints; not their uploads or the LoRA's export.
            "default_recipe_seconds": round(encode_seconds + DEFAULT.steps * per_step + DEFAULT.steps // DEFAULT.checkpoint_every * checkpoint_seconds, 1),
            "loss_finite": all(np.isfinite(trainer.losses)),
        })
        trainer.close()
    except torch.OutOfMemoryError:
        row.update({"out_of_memory": True, "peak_memory_gib": harness.peak_memory_gib()})
    del pipe
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = harness.bench_parser()
    parser.add_argument("--models", default="klein,kontext")
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--checkpointing", default="on,off")
    parser.add_argument("--rank", type=int, default=DEFAULT.rank)
    parser.add_argument("--photos", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row")
    parser.add_argument("--warmup-steps", type=int, default=2)
    args = parser.parse_args(argv)
    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    results = harness.Results(args.out, bench="train", default_recipe={"steps": DEFAULT.steps, "rank": DEFAULT.rank, "resolution": DEFAULT.resolution})
    for model in args.models.split(","):
        for side in map(int, args.sizes.split(",")):
            for checkpointing in args.checkpointing.split(","):
                results.add(measure(model, side, checkpointing == "on", args, device, dtype))
    return results.data


if __name__ == "__main__":
    main()
