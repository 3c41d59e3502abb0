"""The upscale stage: Real-ESRGAN weight files read by spandrel through the production loader, run in
tiles, chosen by factor, planned from the native budget, and what the generate step records about
how the pixels were made. Tiny random-weight models of the real architecture, no download."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from skimage import data

from apex_gpu_worker.diffusion.engine import DiffusionEngine, GenerationCancelled
from apex_gpu_worker.diffusion.upscale_model import SuperResolutionModel, upscaler_dtype
from apex_gpu_worker.diffusion.upscale_plan import UpscalePlan, plan_upscale
from apex_gpu_worker.diffusion.upscale_tiles import tile_spans
from apex_gpu_worker.diffusion.upscaler import Upscaler
from apex_gpu_worker.settings import TINY_MODELS, WorkerSettings
from apex_gpu_worker.steps.generate import generate_step
from dev_support.tiny_models import TINY_UPSCALERS, real_esrgan
from support.loras import publish_file
from support.queue_runs import run_step
from test_generate import PAYLOAD
from test_worker_process import worker_env

ASTRONAUT = Image.fromarray(data.astronaut())
FILES = {scale: name for name, scale in TINY_UPSCALERS.items()}


def load(file, **settings) -> SuperResolutionModel:
    return SuperResolutionModel(file, file.name, WorkerSettings(**settings))


@pytest.fixture(scope="module")
def models(tiny_models) -> dict[int, SuperResolutionModel]:
    return {scale: load(tiny_models["upscaler"] / name) for scale, name in FILES.items()}


def grey_levels(image: Image.Image) -> np.ndarray:
    return np.asarray(image).astype(int)


@pytest.mark.parametrize("scale", [2, 4])
def test_the_tiny_files_are_read_as_the_real_esrgan_they_were_saved_from(tiny_models, scale):
    file = tiny_models["upscaler"] / FILES[scale]
    model = load(file, upscaler_tile=0)
    assert (model.architecture, model.scale, model.dtype) == ("ESRGAN", scale, torch.float32)
    reference = real_esrgan(scale, num_feat=8, num_block=1)
    reference.load_state_dict(load_file(file))
    image = ASTRONAUT.resize((48, 40))
    with torch.inference_mode():
        expected = reference(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255)
    expected = expected[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().to(torch.uint8).numpy().astype(int)
    upscaled = grey_levels(model.run(image))
    assert upscaled.shape == (40 * scale, 48 * scale, 3)
    assert np.abs(upscaled - expected).max() <= 1
    assert upscaled.std() > 10  # an image, not a flat field: the comparison means something


@pytest.mark.parametrize("scale", [2, 4])
def test_tiles_give_the_one_pass_output_and_without_overlap_they_would_not(tiny_models, scale):
    file = tiny_models["upscaler"] / FILES[scale]
    image = ASTRONAUT.resize((90, 118))  # neither side a multiple of the tile or of x2's 4-pixel blocks
    one_pass = grey_levels(load(file, upscaler_tile=0).run(image))
    tiled = grey_levels(load(file, upscaler_tile=32, upscaler_tile_overlap=12).run(image))
    seamed = grey_levels(load(file, upscaler_tile=32, upscaler_tile_overlap=0).run(image))
    assert np.abs(tiled - one_pass).max() <= 1
    assert np.abs(seamed - one_pass).max() > 16


@pytest.mark.parametrize("length, tile, align, spans", [
    (816, 512, 1, [(0, 408), (408, 816)]),
    (100, 512, 1, [(0, 100)]),
    (1025, 512, 1, [(0, 342), (342, 684), (684, 1025)]),
    (118, 32, 4, [(0, 32), (32, 64), (64, 96), (96, 118)]),
    (90, 30, 4, [(0, 32), (32, 64), (64, 90)]),
])
def test_tiles_cover_the_side_in_about_equal_aligned_spans(length, tile, align, spans):
    assert tile_spans(length, tile, align) == spans


@pytest.mark.parametrize("width, height, budget, minimum, by_model, plan", [
    (816, 1024, 1.05, 1, True, UpscalePlan(816, 1024, 1)),  # 1k: rendered as asked
    (1632, 2048, 1.05, 1, True, UpscalePlan(816, 1024, 2)),  # 2k
    (3264, 4096, 1.05, 1, True, UpscalePlan(816, 1024, 4)),  # 4k
    (4096, 4096, 1.05, 1, True, UpscalePlan(1024, 1024, 4)),
    (1200, 1200, 1.05, 1, True, UpscalePlan(592, 592, 2)),  # not a multiple of 16 at x2: the fit does the rest
    (512, 512, 1.05, 2, True, UpscalePlan(256, 256, 2)),  # a generation that asked for x2
    (4096, 4096, 1.05, 2, True, UpscalePlan(1024, 1024, 4)),  # asked x2, the budget needs x4
    (3264, 4096, 1.05, 1, False, UpscalePlan(912, 1136, 3.579)),  # a resize fills the budget, as before
    (816, 1024, 1.05, 1, False, UpscalePlan(816, 1024, 1.0)),
])
def test_the_plan_renders_within_the_budget_at_whole_factors_for_a_model(width, height, budget, minimum, by_model, plan):
    assert plan_upscale(width, height, budget, minimum, by_model) == plan


@pytest.mark.parametrize("scales, factor, passes", [
    ((2, 4), 2, [2]),
    ((2, 4), 4, [4]),
    ((2, 4), 8, [4, 2]),
    ((2, 4), 16, [4, 4]),
    ((4,), 2, [4]),  # overshoots, then the fit scales down
    ((2,), 4, [2, 2]),
])
def test_each_factor_is_reached_with_the_fewest_passes(models, scales, factor, passes):
    assert [m.scale for m in Upscaler([models[s] for s in scales]).passes(factor)] == passes


@pytest.mark.parametrize("scales, native, factor, record", [
    ((2, 4), (64, 80), 4, {"method": "super_resolution", "upscalers": [{"model": "realesrgan-x4-tiny.safetensors", "scale": 4}]}),
    ((4,), (128, 160), 2, {"method": "super_resolution", "upscalers": [{"model": "realesrgan-x4-tiny.safetensors", "scale": 4}]}),
    ((), (128, 160), 2, {"method": "resize"}),
    ((2, 4), (256, 320), 1, {"method": "native"}),
])
def test_images_reach_the_requested_size_and_the_record_says_how(models, scales, native, factor, record):
    images, pixels = Upscaler([models[s] for s in scales]).to_size([ASTRONAUT.resize(native)] * 2, 256, 320, UpscalePlan(*native, factor))
    assert [image.size for image in images] == [(256, 320)] * 2
    assert pixels == {"nativeWidth": native[0], "nativeHeight": native[1], "factor": factor, "seconds": pixels["seconds"], **record}


def test_a_cancelled_job_stops_the_upscale_between_tiles(tiny_models):
    tiled = load(tiny_models["upscaler"] / FILES[4], upscaler_tile=64)
    asked = []

    def should_stop() -> bool:
        asked.append(True)
        return len(asked) > 1

    with pytest.raises(GenerationCancelled):
        Upscaler([tiled]).to_size([ASTRONAUT.resize((128, 160))], 512, 640, UpscalePlan(128, 160, 4), should_stop)
    assert len(asked) == 2


REAL = {"flux_model": "black-forest-labs/FLUX.1-dev", "portrait_model": "black-forest-labs/FLUX.1-Kontext-dev"}


@pytest.mark.parametrize("configured, upscalers", [
    ({}, [str(TINY_MODELS / "upscaler")]),  # the development defaults: the tiny upscaler
    ({"portrait_model": ""}, [str(TINY_MODELS / "upscaler")]),
    (REAL, []),  # real renders are never handed to a random upscaler
    ({"flux_model": REAL["flux_model"]}, []),
    ({**REAL, "upscaler_models": ["/models/RealESRGAN_x4plus.pth"]}, ["/models/RealESRGAN_x4plus.pth"]),
    ({"upscaler_models": []}, []),
])
def test_unset_the_upscaler_is_the_tiny_one_beside_tiny_models_and_none_beside_real_ones(monkeypatch, configured, upscalers):
    monkeypatch.delenv("APEX_GPU_UPSCALER_MODELS", raising=False)
    assert WorkerSettings(**configured).upscaler_models == upscalers


@pytest.mark.parametrize("setting, device, half, bfloat16, dtype", [
    ("auto", "cpu", True, True, torch.float32),
    ("auto", "cuda", True, True, torch.float16),
    ("auto", "cuda", False, True, torch.bfloat16),
    ("auto", "cuda", False, False, torch.float32),
    ("bfloat16", "cuda", True, True, torch.bfloat16),
    ("float32", "cuda", True, True, torch.float32),
])
def test_the_precision_is_half_on_a_gpu_as_the_architecture_allows_and_full_on_the_cpu(setting, device, half, bfloat16, dtype):
    assert upscaler_dtype(setting, device, half, bfloat16) == dtype


def test_a_half_precision_the_architecture_lacks_is_refused():
    with pytest.raises(SystemExit, match="APEX_GPU_UPSCALER_DTYPE: float16 is not supported"):
        upscaler_dtype("float16", "cuda", False, True)


def released_pth(folder):
    """Real-ESRGAN's own releases are pickles with the weights under params_ema."""
    torch.save({"params_ema": real_esrgan(4, num_feat=8, num_block=1).state_dict()}, folder / "RealESRGAN_x4plus.pth")
    return folder / "RealESRGAN_x4plus.pth"


@pytest.mark.parametrize("entry, loaded", [
    (lambda tiny, tmp: tiny / FILES[4], [("realesrgan-x4-tiny.safetensors", 4)]),
    (lambda tiny, tmp: released_pth(tmp), [("RealESRGAN_x4plus.pth", 4)]),
    (lambda tiny, tmp: tiny, [("realesrgan-x2-tiny.safetensors", 2), ("realesrgan-x4-tiny.safetensors", 4)]),
])
def test_a_file_a_released_pth_or_a_folder_of_them_is_accepted(tiny_models, tmp_path, entry, loaded):
    upscaler = Upscaler.from_settings(WorkerSettings(upscaler_models=[str(entry(tiny_models["upscaler"], tmp_path))]))
    assert [(m.name, m.scale) for m in upscaler.models] == loaded


def corrupt(tmp, name, content):
    (tmp / name).write_bytes(content)
    return tmp / name


def scale_one(tmp):
    save_file(real_esrgan(1, num_feat=8, num_block=1).state_dict(), tmp / "restore.safetensors")
    return tmp / "restore.safetensors"


def same_scale_twice(tiny, tmp):
    folder = tmp / "twice"
    folder.mkdir()
    for name in ("a.safetensors", "b.safetensors"):
        (folder / name).write_bytes((tiny / FILES[4]).read_bytes())
    return folder


@pytest.mark.parametrize("entry, message", [
    (lambda tiny, tmp: corrupt(tmp, "noise.safetensors", np.random.default_rng(0).bytes(4096)), "noise.safetensors is not a model spandrel can read"),
    (lambda tiny, tmp: corrupt(tmp, "noise.pth", np.random.default_rng(0).bytes(4096)), "noise.pth is not a model spandrel can read"),
    (lambda tiny, tmp: corrupt(tmp, "cut.safetensors", (tiny / FILES[4]).read_bytes()[:5000]), "cut.safetensors is not a model spandrel can read"),
    (lambda tiny, tmp: tiny.parent / "flux" / "vae" / "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors is not a model spandrel can read"),
    (lambda tiny, tmp: scale_one(tmp), "restore.safetensors is a ESRGAN Restoration model of scale 1; an upscaler is an RGB super-resolution model of scale 2"),
    (lambda tiny, tmp: corrupt(tmp, "model.pt", b"x"), "must be a .pth or .safetensors file"),
    (lambda tiny, tmp: tmp / "nowhere" / "x4.pth", "does not exist"),
    (lambda tiny, tmp: tmp, "holds no .pth or .safetensors file"),
    (lambda tiny, tmp: "someone/upscalers/x4.pth", "someone/upscalers/x4.pth could not be had from the Hugging Face Hub"),
    (lambda tiny, tmp: same_scale_twice(tiny, tmp), "two models have the same scale (a.safetensors x4, b.safetensors x4)"),
])
def test_a_missing_corrupt_or_foreign_weights_file_is_refused_naming_the_setting(tiny_models, tmp_path, entry, message):
    with pytest.raises(SystemExit) as refused:
        Upscaler.from_settings(WorkerSettings(upscaler_models=[str(entry(tiny_models["upscaler"], tmp_path))]))
    assert str(refused.value).startswith("APEX_GPU_UPSCALER_MODELS: ")
    assert message in str(refused.value)


def test_a_hub_file_is_fetched_through_the_hugging_face_cache_and_named_by_repo_and_path(monkeypatch, tiny_models, tmp_path):
    # Offline, hf_hub_download answers from the cache: the file is placed there as a download would.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    publish_file(tmp_path, "ai-forever/Real-ESRGAN", "RealESRGAN_x4.pth", released_pth(tmp_path).read_bytes())
    upscaler = Upscaler.from_settings(WorkerSettings(upscaler_models=["ai-forever/Real-ESRGAN/RealESRGAN_x4.pth"]))
    assert [(m.name, m.scale) for m in upscaler.models] == [("ai-forever/Real-ESRGAN/RealESRGAN_x4.pth", 4)]


def test_the_worker_refuses_to_start_with_a_corrupt_upscaler_and_says_which_setting(settings, tmp_path):
    broken = corrupt(tmp_path, "RealESRGAN_x4plus.pth", b"not a checkpoint")
    env = {**worker_env(settings), "APEX_GPU_UPSCALER_MODELS": json.dumps([str(broken)])}
    result = subprocess.run([sys.executable, "-m", "apex_gpu_worker", "--role", "diffusion"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "APEX_GPU_UPSCALER_MODELS: RealESRGAN_x4plus.pth is not a model spandrel can read" in result.stderr
    assert "GPU worker ready" not in result.stderr


@pytest.fixture
async def upscaling_worker(settings, store, models):
    from apex_gpu_worker.cancellation import CancellationListener
    from apex_gpu_worker.contracts.redis_keys import RedisKeys
    from apex_gpu_worker.step_worker import start_step_worker

    cancellations = CancellationListener(settings.redis_url, RedisKeys(settings.contracts_dir, settings.queue_prefix))
    await cancellations.start()
    step = generate_step(settings, store, DiffusionEngine(settings, settings.flux_model), upscaler=Upscaler(list(models.values())))
    worker = start_step_worker("generate", step, settings, cancellations)
    yield worker
    await worker.close()
    await cancellations.close()


@pytest.mark.parametrize("size, upscale, pixels", [
    # The budget here is 0.08 MP: 512x640 renders at 128x160 and goes up x4.
    ((512, 640), None, {"nativeWidth": 128, "nativeHeight": 160, "method": "super_resolution", "factor": 4,
                        "upscalers": [{"model": "realesrgan-x4-tiny.safetensors", "scale": 4}]}),
    # Within the budget, unless the generation asked for an upscale.
    ((256, 256), None, {"nativeWidth": 256, "nativeHeight": 256, "method": "native", "factor": 1}),
    ((256, 256), 2, {"nativeWidth": 128, "nativeHeight": 128, "method": "super_resolution", "factor": 2,
                     "upscalers": [{"model": "realesrgan-x2-tiny.safetensors", "scale": 2}]}),
])
async def test_the_generate_step_upscales_with_the_model_and_its_result_says_how(settings, store, upscaling_worker, size, upscale, pixels):
    payload = {**PAYLOAD, "width": size[0], "height": size[1], **({"upscale": upscale} if upscale else {})}
    job, state = await run_step(settings, "generate", payload)
    assert state == "completed", job.failedReason
    result = job.returnvalue
    assert result["pixels"] == {**pixels, "seconds": result["pixels"]["seconds"]}
    image = Image.open(io.BytesIO(store.get_bytes(result["images"][0]["key"])))
    assert image.size == size == (result["images"][0]["width"], result["images"][0]["height"])
    assert json.loads(image.text["apex:generation"])["pixels"] == result["pixels"]  # the file says it too
