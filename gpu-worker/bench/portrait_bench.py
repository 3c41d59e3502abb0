"""Portrait rendering time: the image-editing models (FLUX.1 Kontext [dev], FLUX.2 [klein] 4B) at
full size with random bf16 weights, through the worker's DiffusionEngine, rendering a size x size
portrait from a size x size reference photo (framed around its face as the generate step frames
it), eager and torch.compile'd, each image with a different person's identity LoRA loaded into the
engine's slot (hotswapped when compiled). Each model runs at its model card's steps. A mode is
eager or compiled, optionally with `+fp8` (APEX_GPU_QUANTIZE=fp8) and a step cache, `+first_block`
or `+taylorseer` (APEX_GPU_PORTRAIT_STEP_CACHE); where the worker would refuse a mode (fp8 on a
CPU), its row records the refusal. Prints a JSON row per (model, mode) and writes them to --out.

    python -m bench.portrait_bench --out $OUT/portrait.json                  # in gpu-worker/, on a GPU
    python -m bench.portrait_bench --tiny --size 128 --runs 1                # the same code on a CPU
"""

import tempfile
from pathlib import Path

from apex_gpu_worker.checks.faces import largest_face_box
from apex_gpu_worker.devices import resolve_device, resolve_dtype
from apex_gpu_worker.diffusion.engine import GenerationRequest
from apex_gpu_worker.diffusion.reference import prepare_reference

from . import architectures, harness

PROMPT = "Change the attire to a navy suit and the background to a grey studio backdrop; keep the face, hair and age unchanged."


def measure(model: str, mode: str, args, device: str, dtype, work: Path) -> dict:
    harness.start_fresh()
    card = architectures.DIFFUSION_MODELS[model]
    pipe = architectures.diffusion_pipeline(model, device, dtype, args.tiny_dir, full_size=not args.tiny)
    loras = [harness.publish_random_lora(pipe, work / "loras", f"bench/{model}-person-{i}", rank=(16, 32)[i % 2], seed=i)
             for i in range(args.runs + 1)]
    base, *options = mode.split("+")
    step_cache = next((o for o in options if o in ("first_block", "taylorseer")), "none")
    settings = harness.bench_settings(work / "loras", compile=base == "compiled", lora_max_rank=args.lora_rank,
                                      quantize="fp8" if "fp8" in options else "none", portrait_step_cache=step_cache)
    try:
        engine = harness.resident_engine(settings, pipe, model, work / "models", editing=True)
    except SystemExit as refused:  # the worker would stop at start with this
        return {"model": model, "mode": mode, "refused": str(refused)}
    photo = harness.reference_photo(args.size)
    reference = prepare_reference(photo, args.size, args.size, largest_face_box(photo, settings.face_min_score))

    def request(lora, steps: int) -> GenerationRequest:
        return GenerationRequest(prompt=PROMPT, seed=7, width=args.size, height=args.size, num_images=1, steps=steps,
                                 guidance=card["guidance"], loras=[lora], references=(reference,))

    warmup, _ = harness.timed(engine.generate, request(loras[0], args.warmup_steps), harness.never_cancelled)
    runs = []
    for lora in loras[1:]:
        graphs = harness.compiled_graphs()
        seconds, generation = harness.timed(engine.generate, request(lora, card["steps"]), harness.never_cancelled)
        runs.append({"seconds": seconds, "lora_seconds": generation.lora_seconds, "recompiled": harness.compiled_graphs() - graphs})
        assert generation.images[0].size == (args.size, args.size)
    row = {"model": model, "class": type(pipe).__name__, "mode": mode, "quantization": engine.quantization,
           "step_cache": engine.step_cache, "size": args.size, "reference_size": args.size,
           "steps": card["steps"], "guidance": card["guidance"],
           "seconds_per_image": harness.spread([r["seconds"] for r in runs]),
           "lora_load_seconds": harness.spread([r["lora_seconds"] for r in runs]),
           "graphs_recompiled_in_timed_runs": sum(r["recompiled"] for r in runs),
           "warmup_seconds": round(warmup, 1), "peak_memory_gib": harness.peak_memory_gib()}
    del engine, pipe
    return row


def main(argv: list[str] | None = None) -> dict:
    parser = harness.bench_parser()
    parser.add_argument("--models", default="kontext,klein")
    parser.add_argument("--modes", default="eager,compiled", help="eager|compiled[+fp8][+first_block|+taylorseer], comma-separated")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=2, help="timed images per row, each with a new identity LoRA")
    parser.add_argument("--warmup-steps", type=int, default=2, help="the untimed first image (compilation) needs no more")
    parser.add_argument("--lora-rank", type=int, default=128, help="APEX_GPU_LORA_MAX_RANK: every slot is padded to it")
    args = parser.parse_args(argv)
    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    results = harness.Results(args.out, bench="portrait", lora_slots=1, lora_max_rank=args.lora_rank)
    with tempfile.TemporaryDirectory(prefix="portrait-bench-") as work:
        for model in args.models.split(","):
            for mode in args.modes.split(","):
                results.add(measure(model, mode, args, device, dtype, Path(work)))
    return results.data


if __name__ == "__main__":
    main()
