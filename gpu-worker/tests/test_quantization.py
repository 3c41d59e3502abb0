"""APEX_GPU_QUANTIZE: fp8 runs only where it can (an NVIDIA GPU of compute capability 8.9+, bf16
weights, torchao installed) and otherwise stops the worker at start naming the setting; none and
bf16 leave the transformer as loaded. The GPU is faked here for the hardware questions; the fp8
path itself is exercised on a GPU by bench/quantization_bench.py."""

import importlib.util

import pytest
import torch
from pydantic import ValidationError

from apex_gpu_worker.diffusion import quantization
from apex_gpu_worker.diffusion.engine import DiffusionEngine, GenerationRequest
from apex_gpu_worker.diffusion.quantization import check_quantization
from apex_gpu_worker.contracts.steps import step_catalogue
from apex_gpu_worker.runtime import build_processors
from apex_gpu_worker.settings import WorkerSettings


@pytest.fixture
def gpu(monkeypatch):
    """A fake CUDA device of a chosen compute capability, with or without torchao installed."""
    real_find_spec = importlib.util.find_spec

    def fake(capability=(9, 0), torchao=True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
        monkeypatch.setattr(quantization.importlib.util, "find_spec",
                            lambda name, *a: (real_find_spec("torch") if torchao else None) if name == "torchao" else real_find_spec(name, *a))

    return fake


@pytest.mark.parametrize("mode, device, capability, dtype, torchao, refusal", [
    ("int8", "cpu", None, torch.float32, True, "APEX_GPU_QUANTIZE must be one of none, bf16, fp8; got 'int8'"),
    ("fp8", "cpu", None, torch.float32, True, "APEX_GPU_QUANTIZE=fp8 needs an NVIDIA GPU of compute capability 8.9 or newer; this worker runs on cpu"),
    ("fp8", "cuda", (8, 0), torch.bfloat16, True, "APEX_GPU_QUANTIZE=fp8 needs compute capability 8.9 or newer; Fake GPU has 8.0"),
    ("fp8", "cuda", (8, 6), torch.bfloat16, True, "Fake GPU has 8.6"),
    ("fp8", "cuda", (9, 0), torch.float16, True, "APEX_GPU_QUANTIZE=fp8 quantizes bfloat16 weights; APEX_GPU_DTYPE gives torch.float16"),
    ("fp8", "cuda", (9, 0), torch.bfloat16, False, "APEX_GPU_QUANTIZE=fp8 needs the torchao package"),
])
def test_fp8_is_refused_where_it_cannot_run_with_a_message_naming_the_setting(gpu, mode, device, capability, dtype, torchao, refusal):
    if capability:
        gpu(capability, torchao)
    with pytest.raises(SystemExit) as refused:
        check_quantization(mode, device, dtype)
    assert refusal in str(refused.value)


@pytest.mark.parametrize("mode, device, capability, dtype", [
    ("none", "cpu", None, torch.float32),
    ("bf16", "cpu", None, torch.float32),
    ("fp8", "cuda", (8, 9), torch.bfloat16),  # Ada
    ("fp8", "cuda", (9, 0), torch.bfloat16),  # Hopper
    ("fp8", "cuda:0", (10, 0), torch.bfloat16),  # Blackwell
])
def test_quantization_is_accepted_where_it_can_run(gpu, mode, device, capability, dtype):
    if capability:
        gpu(capability, torchao=True)
    assert check_quantization(mode, device, dtype) is None


@pytest.mark.parametrize("value", ["int8", "FP8", "float8", ""])
def test_a_bad_value_stops_the_settings_naming_the_variable(monkeypatch, value):
    monkeypatch.setenv("APEX_GPU_QUANTIZE", value)
    with pytest.raises(ValidationError, match="APEX_GPU_QUANTIZE"):
        WorkerSettings()


@pytest.mark.parametrize("value", ["none", "bf16", "fp8"])
def test_the_settings_take_each_mode_from_the_environment(monkeypatch, value):
    monkeypatch.setenv("APEX_GPU_QUANTIZE", value)
    assert WorkerSettings().quantize == value


def test_fp8_on_the_cpu_stops_the_engine_before_any_model_is_loaded(monkeypatch, tmp_path):
    monkeypatch.delenv("APEX_GPU_QUANTIZE", raising=False)
    settings = WorkerSettings(device="cpu", quantize="fp8", lora_cache_dir=tmp_path)
    with pytest.raises(SystemExit, match="APEX_GPU_QUANTIZE=fp8 needs an NVIDIA GPU"):
        DiffusionEngine(settings, str(tmp_path / "no-such-model"))  # loading it would fail otherwise


def test_none_and_bf16_leave_the_transformer_as_loaded_and_render_the_same_image(monkeypatch, tiny_models, tmp_path):
    monkeypatch.delenv("APEX_GPU_QUANTIZE", raising=False)
    request = GenerationRequest(prompt="a portrait", seed=3, width=64, height=64, num_images=1, steps=2, guidance=3.5, loras=[])
    renders = []
    for mode in ("none", "bf16"):
        engine = DiffusionEngine(WorkerSettings(device="cpu", quantize=mode, lora_cache_dir=tmp_path), str(tiny_models["flux"]))
        assert engine.quantization is None
        assert all(type(p) is torch.nn.Parameter and p.dtype == torch.float32 for p in engine.pipe.transformer.parameters())
        renders.append(engine.generate(request, lambda step, total: False).images[0].tobytes())
    assert renders[0] == renders[1]


@pytest.mark.parametrize("model", ["kontext", "klein"])
def test_fp8_for_an_editing_model_on_the_cpu_stops_the_portrait_worker_at_start_naming_the_setting(monkeypatch, tiny_models, tmp_path, model):
    monkeypatch.delenv("APEX_GPU_QUANTIZE", raising=False)
    settings = WorkerSettings(device="cpu", quantize="fp8", lora_cache_dir=tmp_path, flux_model=str(tiny_models["flux"]),
                              portrait_model=str(tiny_models[model]), upscaler_models=[])
    portraits = step_catalogue(settings.contracts_dir).queue_for("generate", "portrait")
    with pytest.raises(SystemExit, match="APEX_GPU_QUANTIZE=fp8 needs an NVIDIA GPU of compute capability 8.9 or newer; this worker runs on cpu"):
        build_processors(settings, (portraits,))


def test_the_editing_models_keep_plain_parameters_without_quantization(monkeypatch, tiny_models, tmp_path):
    monkeypatch.delenv("APEX_GPU_QUANTIZE", raising=False)
    for model in ("kontext", "klein"):
        engine = DiffusionEngine(WorkerSettings(device="cpu", quantize="none", lora_cache_dir=tmp_path), str(tiny_models[model]), editing=True)
        assert engine.quantization is None
        assert all(type(p) is torch.nn.Parameter for p in engine.pipe.transformer.parameters())
