"""What the benchmarks share: the clock, the results file, the worker's own diffusion engine and VLM
backend over models already in memory (full-size random weights have no folder to load from),
random identity LoRAs placed where the engine finds them, and the reference photo."""

import argparse
import gc
import importlib.metadata
import json
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import torch
from PIL import Image

from apex_gpu_worker.diffusion import engine as engine_module
from apex_gpu_worker.diffusion.engine import DiffusionEngine
from apex_gpu_worker.diffusion.loras import ATTENTION_PROJECTIONS, LoraRequest
from apex_gpu_worker.settings import WorkerSettings
from apex_gpu_worker.vlm import transformers_backend
from apex_gpu_worker.vlm.transformers_backend import TransformersBackend

LORA_COMMIT = "0" * 40  # the revision the local Hub cache records for each bench LoRA


def bench_parser() -> argparse.ArgumentParser:
    """The options every GPU bench takes: the tiny models instead of the full architectures (the
    same code on a CPU), where they are, and where the results go."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiny", action="store_true", help="the tiny development models instead of the full architectures")
    parser.add_argument("--tiny-dir", help="where the tiny models are (built there if missing)")
    parser.add_argument("--out", help="the results as JSON, rewritten after each row")
    return parser


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, *args, **kwargs):
    """(seconds, result), with the GPU's queued work finished at both ends."""
    sync()
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    sync()
    return time.perf_counter() - started, result


def spread(seconds: list[float]) -> dict:
    return {"mean": round(sum(seconds) / len(seconds), 3), "min": round(min(seconds), 3), "max": round(max(seconds), 3),
            "runs": [round(s, 3) for s in seconds]}


def compiled_graphs() -> int:
    """Graphs torch.compile has built in this process: a timed run that raises it recompiled."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def start_fresh() -> None:
    """Frees what the previous row held and restarts the peak-memory count."""
    gc.collect()
    torch._dynamo.reset()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib() -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def environment() -> dict:
    versions = {}
    for package in ("torch", "diffusers", "transformers", "peft", "torchao", "xgrammar", "dlib-bin"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    device = {"device": "cpu"}
    if torch.cuda.is_available():
        device = {"device": torch.cuda.get_device_name(), "capability": ".".join(map(str, torch.cuda.get_device_capability())),
                  "cuda": torch.version.cuda}
    return {**device, "versions": versions, "date": time.strftime("%Y-%m-%d")}


class Results:
    """Rows printed as they come and the whole file rewritten after each one, so a run cut short
    keeps what it measured."""

    def __init__(self, path: str | None, **meta):
        self.path = path
        self.data = {**environment(), **meta, "rows": []}

    def add(self, row: dict) -> dict:
        self.data["rows"].append(row)
        print(json.dumps(row), flush=True)
        if self.path:
            Path(self.path).write_text(json.dumps(self.data, indent=2))
        return row


def bench_settings(lora_cache_dir: Path, **overrides) -> WorkerSettings:
    """The worker's settings for a bench: one LoRA slot, so every request's identity LoRA is loaded
    (hotswapped, when compiled) into it, as for a stream of different people."""
    return WorkerSettings(lora_cache_dir=lora_cache_dir, lora_max_loaded=1, **overrides)


def resident_engine(settings: WorkerSettings, pipe, name: str, folder: Path, editing: bool = False) -> DiffusionEngine:
    """The worker's DiffusionEngine, constructed as at start (quantization, LoRA slots, compile)
    around `pipe` instead of one read from disk."""
    folder = folder / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": type(pipe).__name__}))
    loader = SimpleNamespace(from_pretrained=lambda model, dtype, **shared: pipe)
    with mock.patch.object(engine_module, "DiffusionPipeline", loader):
        return DiffusionEngine(settings, str(folder), editing=editing)


def resident_vlm(model, processor, max_new_tokens: int, compile: bool = False) -> TransformersBackend:
    """The worker's in-process VLM backend (constrained JSON decoding included) around a model
    already in memory; `compile`: as with APEX_GPU_VLM_COMPILE (CUDA only)."""
    with mock.patch.object(transformers_backend, "AutoProcessor", SimpleNamespace(from_pretrained=lambda name: processor)), \
            mock.patch.object(transformers_backend, "AutoModelForImageTextToText", SimpleNamespace(from_pretrained=lambda name, dtype: model)):
        return TransformersBackend("resident", str(model.device), model.dtype, max_new_tokens, compile=compile)


def random_lora_layers(transformer, rank: int, seed: int, strength: float = 0.25) -> dict[str, torch.Tensor]:
    """A random LoRA of `rank` on the attention projections the engine hotswaps, in bf16 (strength
    0: a LoRA that changes nothing), keyed as a LoRA file keys the transformer's layers."""
    generator = torch.Generator().manual_seed(seed)
    layers = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and any(name.endswith(f".{target}") for target in ATTENTION_PROJECTIONS):
            down = torch.randn(rank, module.in_features, generator=generator) / module.in_features**0.5
            up = torch.randn(module.out_features, rank, generator=generator) * strength / rank**0.5
            layers[f"{name}.lora_A.weight"], layers[f"{name}.lora_B.weight"] = down.to(torch.bfloat16), up.to(torch.bfloat16)
    return layers


def publish_random_lora(pipe, cache_dir: Path, repo: str, rank: int, seed: int, strength: float = 0.25) -> LoraRequest:
    """random_lora_layers saved as `repo`'s file in the Hub cache the engine reads offline, as a
    person's identity LoRA would be."""
    snapshot = cache_dir / f"models--{repo.replace('/', '--')}" / "snapshots" / LORA_COMMIT
    type(pipe).save_lora_weights(snapshot, transformer_lora_layers=random_lora_layers(pipe.transformer, rank, seed, strength),
                                 weight_name="lora.safetensors")
    (snapshot.parents[1] / "refs").mkdir(exist_ok=True)
    (snapshot.parents[1] / "refs" / "main").write_text(LORA_COMMIT)
    return LoraRequest(repo, "lora.safetensors", 1.0)


def reference_photo(size: int) -> Image.Image:
    """A real face (scikit-image's astronaut, public domain) as a size x size upload."""
    from skimage import data

    return Image.fromarray(np.asarray(data.astronaut())).resize((size, size), Image.Resampling.LANCZOS)


def never_cancelled(step: int, total: int) -> bool:
    return False
