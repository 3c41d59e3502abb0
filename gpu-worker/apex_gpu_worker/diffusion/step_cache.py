"""APEX_GPU_PORTRAIT_STEP_CACHE: the portrait model's denoising steps reuse work from the step
before (diffusers' cache hooks on the transformer), off by default. `first_block`: First Block
Cache, a step whose first block's output moved less than APEX_GPU_PORTRAIT_STEP_CACHE_THRESHOLD
(relative) reuses the previous step's output of the other blocks; `taylorseer`: TaylorSeer, every
few steps computed, those between predicted from them. Meant for Kontext's 28 steps (klein has 4).
Both trade quality for speed, which random weights cannot measure: opt-in, judged on real renders."""

from contextlib import contextmanager, nullcontext
from typing import Literal

import torch

StepCacheMode = Literal["none", "first_block", "taylorseer"]


def enable_step_cache(transformer: torch.nn.Module, mode: str, threshold: float) -> str | None:
    """Hooks the cache into the transformer, before torch.compile; returns what was done, for the load log."""
    if mode == "none":
        return None
    if not hasattr(transformer, "enable_cache"):
        raise SystemExit(f"APEX_GPU_PORTRAIT_STEP_CACHE={mode}: diffusers has no step cache for {type(transformer).__name__}")
    from diffusers.hooks import FirstBlockCacheConfig, TaylorSeerCacheConfig

    config = FirstBlockCacheConfig(threshold=threshold) if mode == "first_block" else TaylorSeerCacheConfig(
        taylor_factors_dtype=next(transformer.parameters()).dtype)
    transformer.enable_cache(config)
    return repr(config)


def fresh_step_cache(transformer: torch.nn.Module):
    """Around one render: the cache starts empty (else the render's first step would reuse the
    previous render's last), under the one context the hooks keep their state in (Kontext's
    pipeline sets none; klein's sets its own inside it)."""
    if not getattr(transformer, "is_cache_enabled", False):
        return nullcontext()
    return _fresh(transformer)


@contextmanager
def _fresh(transformer):
    transformer._reset_stateful_cache()
    with transformer.cache_context("cond"):
        yield
