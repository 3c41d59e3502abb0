"""APEX_GPU_VLM_COMPILE: the in-process VLM decodes with a static KV cache and a torch.compile'd
forward replayed as CUDA graphs (transformers' own path for a static cache on CUDA), instead of
launching every layer's kernels from Python for each token. Shapes are fixed so that no request
recompiles: the cache is always APEX_GPU_VLM_CACHE_LENGTH tokens long (prompt and answer), and
every batch size a step asks for (1 to MAX_ROWS) is compiled when the worker starts. CUDA only:
elsewhere the worker stops at start, naming the setting; off, decoding is as it always was."""

import torch

# The most answers asked at once: an attempt's candidates, validate's imageKeys (at most 4).
MAX_ROWS = 4


def check_compiled_decoding(enabled: bool, device: str) -> None:
    if enabled and not (device.startswith("cuda") and torch.cuda.is_available()):
        raise SystemExit(f"APEX_GPU_VLM_COMPILE=true needs a CUDA GPU (static KV cache and CUDA graphs); this worker runs on {device}")


def decode_options(enabled: bool, cache_length: int) -> dict:
    """What `generate` is given on top of the question: nothing when off."""
    if not enabled:
        return {}
    from transformers import CompileConfig

    return {"cache_implementation": "static", "max_cache_len": cache_length,
            "compile_config": CompileConfig(fullgraph=False, dynamic=False, mode="reduce-overhead")}
