"""APEX_GPU_QUANTIZE: the diffusion transformers' linear layers in float8 (torchao: weights once,
activations per call, one scale per row), or left in APEX_GPU_DTYPE. Checked before any model
loads: a worker asked for fp8 where it cannot run stops at start, naming the setting, rather than
quietly serving bf16."""

import importlib.util
from typing import get_args

import torch

from ..settings import QuantizeMode

MODES: tuple[str, ...] = get_args(QuantizeMode)
# Float8 matrix units arrived with Ada (8.9) and Hopper (9.0).
FP8_MIN_CAPABILITY = (8, 9)


def check_quantization(mode: str, device: str, dtype: torch.dtype) -> None:
    """Stops the worker (SystemExit) when `mode` cannot run on `device` with weights in `dtype`."""
    if mode not in MODES:
        raise SystemExit(f"APEX_GPU_QUANTIZE must be one of {', '.join(MODES)}; got {mode!r}")
    if mode != "fp8":
        return
    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise SystemExit(f"APEX_GPU_QUANTIZE=fp8 needs an NVIDIA GPU of compute capability "
                         f"{_dotted(FP8_MIN_CAPABILITY)} or newer; this worker runs on {device}")
    capability = torch.cuda.get_device_capability(device)
    if capability < FP8_MIN_CAPABILITY:
        raise SystemExit(f"APEX_GPU_QUANTIZE=fp8 needs compute capability {_dotted(FP8_MIN_CAPABILITY)} or newer; "
                         f"{torch.cuda.get_device_name(device)} has {_dotted(capability)}")
    if dtype != torch.bfloat16:  # torchao's rowwise float8 starts from bf16 weights
        raise SystemExit(f"APEX_GPU_QUANTIZE=fp8 quantizes bfloat16 weights; APEX_GPU_DTYPE gives {dtype}")
    if importlib.util.find_spec("torchao") is None:
        raise SystemExit("APEX_GPU_QUANTIZE=fp8 needs the torchao package, which is not installed in this worker's environment")


def quantize_transformer(transformer: torch.nn.Module, mode: str) -> str | None:
    """Quantizes in place, before LoRA adapters and torch.compile, which then see float8 base
    layers (adapters stay in bf16 beside them); returns what was done, for the load log."""
    if mode != "fp8":
        return None
    from torchao.quantization import Float8DynamicActivationFloat8WeightConfig, PerRow, quantize_

    # set_inductor_config=False: torchao would otherwise switch on coordinate-descent tuning for every
    # model this process compiles, minutes more at start for all of them.
    quantize_(transformer, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow(), set_inductor_config=False))
    return "float8 weights and activations, rowwise scales (torchao)"


def _dotted(capability: tuple[int, int]) -> str:
    return f"{capability[0]}.{capability[1]}"
