"""Real LoRA files for the tests, made with peft on the tiny FLUX transformer (non-zero init, so
they change the output) and placed in a Hugging Face cache layout, so the worker reaches them
through the same hf_hub_download call that downloads them in production (offline: a cache hit)."""

from pathlib import Path

import torch
from diffusers import FluxPipeline, FluxTransformer2DModel
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def publish_lora(flux_dir: Path, cache_dir: Path, repo: str, weight_name: str, seed: int, rank: int = 4) -> None:
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel.from_pretrained(flux_dir, subfolder="transformer")
    transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=False,
                                       target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    for name, param in transformer.named_parameters():
        if "lora_" in name:
            torch.nn.init.normal_(param, std=0.5)  # strong enough to show in a 4-step tiny render
    snapshot = cache_dir / f"models--{repo.replace('/', '--')}" / "snapshots" / COMMIT
    FluxPipeline.save_lora_weights(snapshot, transformer_lora_layers=get_peft_model_state_dict(transformer), weight_name=weight_name)
    refs = snapshot.parents[1] / "refs"
    refs.mkdir(exist_ok=True)
    (refs / "main").write_text(COMMIT)


def publish_file(cache_dir: Path, repo: str, weight_name: str, data: bytes) -> None:
    snapshot = cache_dir / f"models--{repo.replace('/', '--')}" / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (snapshot / weight_name).write_bytes(data)
    (snapshot.parents[1] / "refs").mkdir(exist_ok=True)
    (snapshot.parents[1] / "refs" / "main").write_text(COMMIT)
