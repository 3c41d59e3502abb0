"""APEX_GPU_PORTRAIT_STEP_CACHE on the tiny Kontext: off by default (the render as it was); each
mode changes the render (steps reused or predicted) and gives the same render twice (each render
starts with an empty cache); only the portrait model gets it; a bad value stops the settings naming
the variable. Whether the renders stay good cannot be told from random weights."""

import pytest
from PIL import Image
from pydantic import ValidationError

from apex_gpu_worker.diffusion.engine import DiffusionEngine, GenerationRequest
from apex_gpu_worker.settings import WorkerSettings

REQUEST = GenerationRequest(prompt="a portrait", seed=3, width=64, height=64, num_images=1, steps=8, guidance=2.5, loras=[],
                            references=(Image.new("RGB", (64, 64), (120, 90, 60)),))


def renders(tiny_models, tmp_path, twice: bool = False, **settings) -> list[bytes]:
    engine = DiffusionEngine(WorkerSettings(device="cpu", lora_cache_dir=tmp_path, **settings), str(tiny_models["kontext"]), editing=True)
    return [engine.generate(REQUEST, lambda step, total: False).images[0].tobytes() for _ in range(2 if twice else 1)], engine


@pytest.fixture(scope="module")
def uncached(tiny_models, tmp_path_factory):
    (image,), engine = renders(tiny_models, tmp_path_factory.mktemp("hf"))
    assert engine.step_cache is None and not engine.pipe.transformer.is_cache_enabled  # the default
    return image


@pytest.mark.parametrize("mode, threshold, config", [
    ("first_block", 1.0, "FirstBlockCacheConfig"),  # every step after the first reuses the rest of the blocks
    ("taylorseer", 0.05, "TaylorSeerCacheConfig"),
])
def test_each_mode_changes_the_render_and_renders_the_same_image_twice(tiny_models, tmp_path, uncached, mode, threshold, config):
    (first, second), engine = renders(tiny_models, tmp_path, twice=True, portrait_step_cache=mode, portrait_step_cache_threshold=threshold)
    assert config in engine.step_cache and engine.pipe.transformer.is_cache_enabled
    assert first == second  # the second render did not start from the first one's cache
    assert first != uncached


def test_a_threshold_no_step_meets_renders_as_without_the_cache(tiny_models, tmp_path, uncached):
    (image,), _ = renders(tiny_models, tmp_path, portrait_step_cache="first_block", portrait_step_cache_threshold=1e-9)
    assert image == uncached


def test_the_text_to_image_model_never_gets_the_portrait_models_cache(tiny_models, tmp_path):
    engine = DiffusionEngine(WorkerSettings(device="cpu", lora_cache_dir=tmp_path, portrait_step_cache="first_block"), str(tiny_models["flux"]))
    assert engine.step_cache is None and not engine.pipe.transformer.is_cache_enabled


@pytest.mark.parametrize("value", ["fbc", "FIRST_BLOCK", "on", ""])
def test_a_bad_mode_stops_the_settings_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("APEX_GPU_PORTRAIT_STEP_CACHE", value)
    with pytest.raises(ValidationError, match="portrait_step_cache"):
        WorkerSettings()


@pytest.mark.parametrize("value, expected", [("none", "none"), ("first_block", "first_block"), ("taylorseer", "taylorseer")])
def test_the_settings_take_each_mode_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("APEX_GPU_PORTRAIT_STEP_CACHE", value)
    assert WorkerSettings().portrait_step_cache == expected


@pytest.mark.parametrize("threshold, accepted", [("0", False), ("-0.1", False), ("1.5", False), ("0.05", True), ("1", True)])
def test_the_threshold_is_a_share_above_zero(monkeypatch, threshold, accepted):
    monkeypatch.setenv("APEX_GPU_PORTRAIT_STEP_CACHE_THRESHOLD", threshold)
    if accepted:
        assert WorkerSettings().portrait_step_cache_threshold == float(threshold)
    else:
        with pytest.raises(ValidationError, match="portrait_step_cache_threshold"):
            WorkerSettings()
