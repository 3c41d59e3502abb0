"""The GPU benchmarks' --tiny paths: the same code as on the GPU (the worker's engine, VLM backend
and checks around models held in memory), run on the tiny models so a change that breaks a bench
is caught here rather than during a rented GPU's minutes."""

import json

import pytest
import torch

from bench import attempt_bench, flux_bench, portrait_bench, quantization_bench, train_bench


@pytest.fixture
def tiny(tiny_models, tmp_path):
    out = tmp_path / "result.json"

    def args(*extra: str) -> list[str]:
        return ["--tiny", "--tiny-dir", str(tiny_models["flux"].parent), "--out", str(out), *extra]

    args.out = out
    yield args
    torch._dynamo.reset()


def rows_by(data: dict, *keys: str) -> dict:
    return {tuple(row[k] for k in keys): row for row in data["rows"]}


def test_the_portrait_bench_renders_each_editing_model_with_a_new_identity_lora_per_image(tiny):
    kontext = portrait_bench.main(tiny("--models", "kontext", "--modes", "compiled", "--size", "128", "--runs", "2"))
    klein = portrait_bench.main(tiny("--models", "klein", "--modes", "eager", "--size", "128", "--runs", "1"))
    assert json.loads(tiny.out.read_text()) == klein  # written as it goes
    compiled, eager = rows_by(kontext, "model", "mode")["kontext", "compiled"], rows_by(klein, "model", "mode")["klein", "eager"]
    assert (compiled["class"], compiled["steps"], eager["class"], eager["steps"]) == ("FluxKontextPipeline", 28, "Flux2KleinPipeline", 4)
    assert len(compiled["seconds_per_image"]["runs"]) == 2 and compiled["graphs_recompiled_in_timed_runs"] == 0
    assert all(seconds > 0 for row in (compiled, eager) for seconds in row["lora_load_seconds"]["runs"])


def test_the_portrait_bench_renders_with_a_step_cache_and_runs_or_refuses_fp8_as_the_worker_would(tiny):
    rows = rows_by(portrait_bench.main(tiny("--models", "kontext", "--modes", "eager+first_block,eager+taylorseer,compiled+fp8",
                                            "--size", "128", "--runs", "1")), "model", "mode")
    assert "FirstBlockCacheConfig" in rows["kontext", "eager+first_block"]["step_cache"]
    assert "TaylorSeerCacheConfig" in rows["kontext", "eager+taylorseer"]["step_cache"]
    fp8 = rows["kontext", "compiled+fp8"]
    if torch.cuda.is_available():
        assert fp8["quantization"] and fp8["graphs_recompiled_in_timed_runs"] == 0
    else:
        assert fp8["refused"].startswith("APEX_GPU_QUANTIZE=fp8 needs an NVIDIA GPU")


def test_the_quantization_bench_measures_bf16_and_runs_or_refuses_fp8_as_the_worker_would(tiny):
    data = quantization_bench.main(tiny("--size", "128", "--steps", "2"))
    bf16, fp8 = rows_by(data, "quantize")[("none",)], rows_by(data, "quantize")[("fp8",)]
    assert len(bf16["seconds_per_image"]["runs"]) == 3 and bf16["latents_finite"]
    assert bf16["lora_effect"]["person_1_vs_zero_lora"] > 0 and bf16["lora_effect"]["person_1_vs_person_2"] > 0
    if torch.cuda.is_available():
        assert fp8["lora_effect"]["person_1_vs_zero_lora"] > 0
    else:
        assert fp8 == {"quantize": "fp8", "refused": "APEX_GPU_QUANTIZE=fp8 needs an NVIDIA GPU of compute capability 8.9 or newer; this worker runs on cpu"}


def test_the_attempt_bench_times_every_part_of_an_attempt_with_the_vlm_resident(tiny):
    data = attempt_bench.main(tiny("--portrait-models", "klein", "--size", "192", "--answer-tokens", "12", "--runs", "2",
                                   "--best-of", "2", "--with-face", "1"))
    alone, backend, klein = data["rows"]
    assert alone["prefill_seconds"]["mean"] > 0 and alone["seconds_per_token"] > 0
    assert 1 <= backend["answer_tokens"] <= 12 and backend["warm_seconds"] > 0 and backend["graphs_compiled_after_warm"] == 0
    assert set(klein["parts_seconds_mean"]) == {
        "prompt_vlm", "generate_frame_reference_cpu", "generate_render", "generate_encode_png_cpu", "validate_decode_png_cpu",
        "validate_cheap_checks_cpu", "validate_judge_vlm"}
    assert klein["attempt_seconds"] == pytest.approx(klein["gpu_seconds"] + klein["cpu_seconds"], abs=0.002)
    # Per attempt: the prompt, then one judgement of the one candidate with a face (the faceless render is not shown).
    describe, judge, rewrite, judge_again = klein["vlm_answers"]
    assert [c["rows"] for c in klein["vlm_answers"]] == [1, 1, 1, 1]
    assert rewrite["prompt_tokens"] != describe["prompt_tokens"]  # the second attempt writes without the photo
    assert [counts["vlm_calls"] for counts in klein["runs_vlm_counts"]] == [2, 2]
    assert klein["runs_vlm_counts"][0] == {"vlm_calls": 2, "prompt_tokens": describe["prompt_tokens"] + judge["prompt_tokens"],
                                           "decoded_tokens": describe["answer_tokens"] + judge["answer_tokens"]}
    assert all(1 <= call["answer_tokens"] <= 12 for call in klein["vlm_answers"])
    assert klein["runs_best_judgement"] == ["judged", "judged"]


def test_an_attempt_whose_candidate_has_no_face_asks_the_vlm_once(tiny):
    klein = attempt_bench.main(tiny("--portrait-models", "klein", "--size", "192", "--answer-tokens", "12", "--runs", "1",
                                    "--with-face", "0"))["rows"][-1]
    assert klein["runs_vlm_counts"][0]["vlm_calls"] == 1 and klein["runs_best_judgement"] == ["skipped"]


def test_the_flux_bench_times_eager_and_compiled_with_a_hotswapped_lora(tiny):
    data = flux_bench.main(tiny("--size", "128", "--steps", "2", "--runs", "2", "--modes", "eager,compiled+lora-hotswap"))
    assert [row["mode"] for row in data["rows"]] == ["eager", "compiled+lora-hotswap"]
    assert all(len(row["runs"]) == 2 and row["seconds_per_image"] > 0 for row in data["rows"])


def test_the_training_bench_times_the_workers_own_loop_with_and_without_gradient_checkpointing(tiny):
    data = train_bench.main(tiny("--models", "klein", "--sizes", "64", "--steps", "2", "--photos", "2"))
    rows = rows_by(data, "model", "gradient_checkpointing")
    assert set(rows) == {("klein", True), ("klein", False)}
    for row in rows.values():
        assert row["class"] == "Flux2KleinPipeline" and row["loss_finite"]
        assert row["seconds_per_step"] > 0 and row["checkpoint_mib"] > 0
        assert row["default_recipe_seconds"] > 1000 * row["seconds_per_step"]
    assert json.loads(tiny.out.read_text()) == data
