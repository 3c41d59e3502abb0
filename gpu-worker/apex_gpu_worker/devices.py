"""Where the models run and in which precision: the `device` and `dtype` settings resolved the same
way for FLUX and the in-process VLM."""

import torch


def resolve_device(setting: str) -> str:
    """`auto` is the GPU when there is one, else the CPU; anything else is a torch device as given."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if setting == "auto" else setting


def resolve_dtype(setting: str, device: str) -> torch.dtype:
    """`auto` is bfloat16 on a GPU and float32 on the CPU; anything else is a torch dtype by name."""
    if setting == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return getattr(torch, setting)
