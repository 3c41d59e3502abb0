"""APEX_GPU_QUANTIZE=fp8 against bf16 for text-to-image: FLUX.1 [dev] at full size with random
weights (the same weights for both: seed 0), through the worker's DiffusionEngine, torch.compile'd,
each image with a per-request LoRA hotswapped into the engine's slot. Beside the time, whether the
hotswapped LoRA still changes the output under fp8: the final latents of the same seed and prompt
with a LoRA and with a zero LoRA (same slot, same arithmetic, no change), relative to their size,
against the same measure in bf16; and how far fp8's latents are from bf16's. Where fp8 cannot run
(a CPU), its row records the worker's refusal.

    python -m bench.quantization_bench --out $OUT/quantization.json        # in gpu-worker/, on a GPU
    python -m bench.quantization_bench --tiny --size 128 --steps 2         # the same code on a CPU
"""

import tempfile
from pathlib import Path

import torch

from apex_gpu_worker.devices import resolve_device, resolve_dtype
from apex_gpu_worker.diffusion.engine import GenerationRequest

from . import architectures, harness

PROMPT = "a professional portrait photo of a person in a navy suit, studio light"


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return round(float((a - b).norm() / b.norm()), 4)


def record_latents(pipe) -> list[torch.Tensor]:
    """The latents each later image is decoded from, appended as they reach the VAE."""
    recorded, decode = [], pipe.vae.decode

    def decode_and_record(latents, *args, **kwargs):
        recorded.append(latents.detach().float().cpu())
        return decode(latents, *args, **kwargs)

    pipe.vae.decode = decode_and_record
    return recorded


def measure(mode: str, args, device: str, dtype, work: Path, loras: list, latents_by_mode: dict) -> dict:
    harness.start_fresh()
    pipe = architectures.diffusion_pipeline("flux", device, dtype, args.tiny_dir, full_size=not args.tiny)
    if not loras:  # the same files for both modes: a zero LoRA, then two people's
        loras += [harness.publish_random_lora(pipe, work / "loras", f"bench/person-{i}", rank=(16, 32, 16)[i], seed=i,
                                              strength=0.0 if i == 0 else 0.25) for i in range(3)]
    settings = harness.bench_settings(work / "loras", compile=True, quantize=mode, lora_max_rank=args.lora_rank)
    try:
        engine = harness.resident_engine(settings, pipe, f"flux-{mode}", work / "models")
    except SystemExit as refused:  # the worker would stop at start with this
        return {"quantize": mode, "refused": str(refused)}
    latents = record_latents(pipe)

    def request(lora, steps: int) -> GenerationRequest:
        return GenerationRequest(prompt=PROMPT, seed=11, width=args.size, height=args.size, num_images=1, steps=steps,
                                 guidance=architectures.DIFFUSION_MODELS["flux"]["guidance"], loras=[lora])

    warmup, _ = harness.timed(engine.generate, request(loras[1], args.warmup_steps), harness.never_cancelled)
    latents.clear()
    runs = []
    for lora in loras:  # each hotswapped in before its image
        graphs = harness.compiled_graphs()
        seconds, generation = harness.timed(engine.generate, request(lora, args.steps), harness.never_cancelled)
        runs.append({"seconds": seconds, "lora_seconds": generation.lora_seconds, "recompiled": harness.compiled_graphs() - graphs})
    zero, first, second = latents
    latents_by_mode[mode] = latents
    row = {"quantize": mode, "quantization": engine.quantization, "size": args.size, "steps": args.steps,
           "seconds_per_image": harness.spread([r["seconds"] for r in runs]),
           "lora_load_seconds": harness.spread([r["lora_seconds"] for r in runs]),
           "graphs_recompiled_in_timed_runs": sum(r["recompiled"] for r in runs),
           "warmup_seconds": round(warmup, 1), "peak_memory_gib": harness.peak_memory_gib(),
           "latents_finite": all(bool(torch.isfinite(z).all()) for z in latents),
           "lora_effect": {"person_1_vs_zero_lora": relative_difference(first, zero),
                           "person_2_vs_zero_lora": relative_difference(second, zero),
                           "person_1_vs_person_2": relative_difference(first, second)}}
    if mode != "none" and "none" in latents_by_mode:
        row["vs_bf16_same_lora"] = [relative_difference(ours, bf16) for ours, bf16 in zip(latents, latents_by_mode["none"])]
    del engine, pipe
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = harness.bench_parser()
    parser.add_argument("--modes", default="none,fp8", help="APEX_GPU_QUANTIZE values, bf16 (none) first")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--lora-rank", type=int, default=128, help="APEX_GPU_LORA_MAX_RANK: every slot is padded to it")
    args = parser.parse_args(argv)
    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    results = harness.Results(args.out, bench="quantization", lora_slots=1, lora_max_rank=args.lora_rank,
                              images_per_row="3: a zero LoRA, then two people's LoRAs, each hotswapped in before its image")
    loras, latents_by_mode = [], {}
    with tempfile.TemporaryDirectory(prefix="quantization-bench-") as work:
        for mode in args.modes.split(","):
            results.add(measure(mode, args, device, dtype, Path(work), loras, latents_by_mode))
    return results.data


if __name__ == "__main__":
    main()
