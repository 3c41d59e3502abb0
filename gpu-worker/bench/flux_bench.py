"""FLUX.1-dev timing with the real architecture and random bf16 weights (the arithmetic is that of
the real model): seconds per 1024x1024 image at 28 steps, eager, torch.compile, and compiled with a
per-request LoRA hotswapped between images, through diffusers directly (the worker's engine is
timed by quantization_bench.py). Prints a JSON table (and writes it to --out).

    python -m bench.flux_bench --out $OUT/flux.json           # in gpu-worker/, on a GPU machine
    python -m bench.flux_bench --tiny --steps 2 --size 256    # the same code path on CPU, in seconds
"""


import torch

from apex_gpu_worker.devices import resolve_device, resolve_dtype

from . import architectures, harness

# ~74 TFLOP per step for the 12B transformer at 1024x1024 (4096 image + 512 text tokens), as others
# estimate it; used only to put the measured time in proportion.
TFLOP_PER_STEP_1024 = 74.0


def timed(pipe, size: int, steps: int, seed: int) -> float:
    return harness.timed(pipe, "a professional portrait photo", width=size, height=size, num_inference_steps=steps, guidance_scale=3.5,
                         generator=torch.Generator("cpu").manual_seed(seed), output_type="pil")[0]


def row(name: str, seconds: list[float], size: int, steps: int) -> dict:
    mean = sum(seconds) / len(seconds)
    tflops = TFLOP_PER_STEP_1024 * (size / 1024) ** 2 * steps / mean
    out = {"mode": name, "seconds_per_image": round(mean, 3), "images_per_hour": round(3600 / mean, 1),
           "runs": [round(s, 3) for s in seconds], "achieved_tflops": round(tflops, 1)}
    if torch.cuda.is_available():
        out["peak_memory_gib"] = harness.peak_memory_gib()
        out["utilisation_vs_989_tflops_bf16_dense"] = round(tflops / 989.0, 3)  # H100 SXM bf16 dense peak
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = harness.bench_parser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="eager,compiled,compiled+lora-hotswap")
    args = parser.parse_args(argv)
    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    results = harness.Results(args.out, bench="flux", size=args.size, steps=args.steps)
    for mode in args.modes.split(","):
        harness.start_fresh()
        pipe = architectures.diffusion_pipeline("flux", device, dtype, args.tiny_dir, full_size=not args.tiny)
        pipe.set_progress_bar_config(disable=True)
        loras = []
        if "lora" in mode:
            pipe.enable_lora_hotswap(target_rank=64)
            loras = [{f"transformer.{k}": v for k, v in harness.random_lora_layers(pipe.transformer, 16 + 16 * i, seed=i).items()}
                     for i in range(2)]  # the pipeline-level key layout
            pipe.load_lora_weights(loras[0], adapter_name="request")
        if "compiled" in mode:
            pipe.transformer.compile(fullgraph=False)  # in place: LoRA loading still finds the transformer
        timed(pipe, args.size, args.steps, seed=0)  # warm-up (and compilation)
        seconds = []
        for run in range(args.runs):
            if loras:  # a different request's LoRA in the same slot: weights swapped, no recompilation
                pipe.load_lora_weights(loras[(run + 1) % len(loras)], adapter_name="request", hotswap=True)
            seconds.append(timed(pipe, args.size, args.steps, seed=run + 1))
        results.add(row(mode, seconds, args.size, args.steps))
        del pipe
    return results.data


if __name__ == "__main__":
    main()
