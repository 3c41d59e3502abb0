"""FLUX.1-dev timing with the real architecture and random bf16 weights (the arithmetic is that of
the real model): seconds per 1024x1024 image at 28 steps, eager, torch.compile, and compiled with a
per-request LoRA hotswapped between images. Prints a JSON table (and writes it to --out).

    python -m bench.flux_bench --out $OUT/flux.json           # in gpu-worker/, on a GPU machine
    python -m bench.flux_bench --tiny --steps 2 --size 256    # the same code path on CPU, in seconds
"""

import argparse
import json
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict
from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

from apex_gpu_worker.devices import resolve_device, resolve_dtype
from dev_support.tiny_models import ensure_tiny_models

# ~74 TFLOP per step for the 12B transformer at 1024x1024 (4096 image + 512 text tokens), as others
# estimate it; used only to put the measured time in proportion.
TFLOP_PER_STEP_1024 = 74.0


def full_size_pipeline(device: str, dtype: torch.dtype, tokenizer_dir: str | None) -> FluxPipeline:
    with torch.device(device):
        transformer = FluxTransformer2DModel(guidance_embeds=True).to(dtype)  # defaults = FLUX.1-dev
        text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                                    num_attention_heads=12, projection_dim=768)).to(dtype)
        text_encoder_2 = T5EncoderModel(T5Config(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                                                 feed_forward_proj="gated-gelu", vocab_size=32128)).to(dtype)
        vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(128, 256, 512, 512),
                            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                            layers_per_block=2, use_quant_conv=False, use_post_quant_conv=False,
                            shift_factor=0.1159, scaling_factor=0.3611).to(dtype)
    tiny = _tiny_pipeline_parts(tokenizer_dir)
    return FluxPipeline(scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True), vae=vae,
                        text_encoder=text_encoder, tokenizer=tiny.tokenizer, text_encoder_2=text_encoder_2,
                        tokenizer_2=tiny.tokenizer_2, transformer=transformer)


def _tiny_pipeline_parts(tokenizer_dir: str | None):
    """Tokenizers only change token ids, not the arithmetic: the tiny models' ones are used."""
    folder = ensure_tiny_models(Path(tokenizer_dir or "/tmp/apex-bench-tiny"))["flux"]
    return FluxPipeline.from_pretrained(folder)


def make_lora(transformer, rank: int, seed: int) -> dict:
    torch.manual_seed(seed)
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]), adapter_name="bench_tmp")
    state = get_peft_model_state_dict(transformer, adapter_name="bench_tmp")
    transformer.delete_adapters("bench_tmp")
    return {f"transformer.{k}": v.detach().clone() for k, v in state.items()}  # the pipeline-level key layout


def timed(pipe, size: int, steps: int, seed: int) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started = time.perf_counter()
    pipe("a professional portrait photo", width=size, height=size, num_inference_steps=steps, guidance_scale=3.5,
         generator=torch.Generator("cpu").manual_seed(seed), output_type="pil")
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started


def row(name: str, seconds: list[float], size: int, steps: int) -> dict:
    mean = sum(seconds) / len(seconds)
    tflops = TFLOP_PER_STEP_1024 * (size / 1024) ** 2 * steps / mean
    out = {"mode": name, "seconds_per_image": round(mean, 3), "images_per_hour": round(3600 / mean, 1),
           "runs": [round(s, 3) for s in seconds], "achieved_tflops": round(tflops, 1)}
    if torch.cuda.is_available():
        out["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        out["utilisation_vs_989_tflops_bf16_dense"] = round(tflops / 989.0, 3)  # H100 SXM bf16 dense peak
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="the tiny test models instead of the full architecture")
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default="eager,compiled,compiled+lora-hotswap")
    parser.add_argument("--out")
    args = parser.parse_args()
    device = resolve_device("auto")
    dtype = resolve_dtype("auto", device)
    results = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "size": args.size,
               "steps": args.steps, "torch": torch.__version__, "rows": []}
    for mode in args.modes.split(","):
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        pipe = _tiny_pipeline_parts(None) if args.tiny else full_size_pipeline(device, dtype, None)
        pipe.to(device, dtype)
        pipe.set_progress_bar_config(disable=True)
        loras = []
        if "lora" in mode:
            pipe.enable_lora_hotswap(target_rank=64)
            loras = [make_lora(pipe.transformer, 16 + 16 * i, seed=i) for i in range(2)]
            pipe.load_lora_weights(loras[0], adapter_name="request")
        if "compiled" in mode:
            pipe.transformer.compile(fullgraph=False)  # in place: LoRA loading still finds the transformer
        timed(pipe, args.size, args.steps, seed=0)  # warm-up (and compilation)
        seconds = []
        for run in range(args.runs):
            if loras:  # a different request's LoRA in the same slot: weights swapped, no recompilation
                pipe.load_lora_weights(loras[(run + 1) % len(loras)], adapter_name="request", hotswap=True)
            seconds.append(timed(pipe, args.size, args.steps, seed=run + 1))
        results["rows"].append(row(mode, seconds, args.size, args.steps))
        print(json.dumps(results["rows"][-1]), flush=True)
        if args.out:  # after every row: a run cut short still reports what it measured
            with open(args.out, "w") as f:
                json.dump(results, f, indent=2)
        del pipe


if __name__ == "__main__":
    main()
