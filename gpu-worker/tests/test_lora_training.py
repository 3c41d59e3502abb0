"""Our LoRA training loop on the tiny FLUX.1 and FLUX.2 [klein] pipelines, loaded like production
models: it learns (against a zero learning rate), resumes a checkpoint exactly, stops between
steps when cancelled, and writes a LoRA file diffusers loads back as the trained adapter."""

import pytest
import torch
from PIL import Image
from skimage import data

from apex_gpu_worker.training.checkpoint import TrainingCheckpoint
from apex_gpu_worker.training.lora_trainer import LORA_FILE, LoraTrainer, encode_photo, evaluation_loss
from apex_gpu_worker.training.model_inputs import inputs_for
from apex_gpu_worker.training.recipe import TrainingRecipe

FAMILIES = ["flux", "klein"]
SIDE = 64


@pytest.fixture(scope="module")
def photos():
    return [Image.fromarray(data.astronaut()).resize((SIDE, SIDE)), Image.fromarray(data.coffee()).resize((SIDE, SIDE))]


CAPTIONS = ["a photo of tok person", "a photo of tok person outdoors"]


def pipeline(tiny_models, family: str):
    from diffusers import DiffusionPipeline

    return DiffusionPipeline.from_pretrained(tiny_models[family])


def recipe(**overrides) -> TrainingRecipe:
    return TrainingRecipe(**{"steps": 40, "rank": 8, "learning_rate": 8e-3, "resolution": SIDE, "checkpoint_every": 10, "gradient_checkpointing": False, **overrides})


@pytest.mark.parametrize("family", FAMILIES)
def test_training_lowers_the_loss_by_a_margin_a_zero_learning_rate_does_not(tiny_models, photos, family):
    pipe = pipeline(tiny_models, family)
    results = {}
    for learning_rate in (0.0, 8e-3):
        trainer = LoraTrainer(pipe, recipe(learning_rate=learning_rate), photos, CAPTIONS)
        before = trainer.evaluation_loss()
        outcome = trainer.run()
        results[learning_rate] = (before, trainer.evaluation_loss(), outcome.steps_done)
        trainer.close()
    (before0, after0, steps0), (before, after, steps) = results[0.0], results[8e-3]
    assert steps0 == steps == 40
    assert after0 == pytest.approx(before0, rel=1e-6)
    assert after < 0.95 * before


@pytest.mark.parametrize("family", FAMILIES)
def test_a_resumed_run_continues_from_its_checkpoint_and_ends_with_the_uninterrupted_adapter(tiny_models, photos, family):
    pipe = pipeline(tiny_models, family)
    uninterrupted = LoraTrainer(pipe, recipe(steps=20), photos, CAPTIONS)
    uninterrupted.run()
    expected = uninterrupted.adapter_state()
    uninterrupted.close()

    # A worker that dies at step 13: its last checkpoint, at step 10, is what survives (as bytes, like S3).
    checkpoints: list[bytes] = []
    killed = LoraTrainer(pipe, recipe(steps=20), photos, CAPTIONS)
    outcome = killed.run(should_stop=lambda: killed.step >= 13, on_checkpoint=lambda c: checkpoints.append(c.to_bytes()))
    killed.close()
    assert outcome.steps_done == 13 and len(checkpoints) == 1

    resumed = LoraTrainer(pipe, recipe(steps=20), photos, CAPTIONS)
    resumed.resume(TrainingCheckpoint.from_bytes(checkpoints[-1]))
    seen: list[int] = []
    outcome = resumed.run(on_progress=lambda p: seen.append(p.step))
    got = resumed.adapter_state()
    resumed.close()
    assert seen == list(range(11, 21))  # its step counter continues; steps 11-13 are the work repeated
    assert outcome.steps_done == 20
    assert set(got) == set(expected)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)


def test_cancellation_ends_the_run_between_steps(tiny_models, photos):
    pipe = pipeline(tiny_models, "klein")
    trainer = LoraTrainer(pipe, recipe(steps=40), photos, CAPTIONS)
    outcome = trainer.run(should_stop=lambda: trainer.step >= 3)
    trainer.close()
    assert outcome.cancelled and outcome.steps_done == 3


@pytest.mark.parametrize("family", FAMILIES)
def test_the_lora_file_loads_into_the_pipeline_as_the_trained_adapter(tiny_models, photos, family, tmp_path):
    pipe = pipeline(tiny_models, family)
    samples = [encode_photo(pipe, inputs_for(pipe), p, c, SIDE) for p, c in zip(photos, CAPTIONS)]
    base = evaluation_loss(inputs_for(pipe), pipe.transformer, samples)
    trainer = LoraTrainer(pipe, recipe(), photos, CAPTIONS)
    trainer.run()
    trained = trainer.evaluation_loss()
    (tmp_path / LORA_FILE).write_bytes(trainer.export_lora())
    trainer.close()
    assert evaluation_loss(inputs_for(pipe), pipe.transformer, samples) == pytest.approx(base, rel=1e-6)  # close() left the base as it was

    pipe.load_lora_weights(tmp_path, weight_name=LORA_FILE, adapter_name="identity")
    loaded = evaluation_loss(inputs_for(pipe), pipe.transformer, samples)
    assert loaded == pytest.approx(trained, rel=1e-4)
    assert loaded < 0.95 * base


def test_a_checkpoint_is_data_only():
    checkpoint = TrainingCheckpoint(7, {"w": torch.ones(2)}, {"state": {}, "param_groups": []}, torch.Generator().get_state(), [0.5])
    again = TrainingCheckpoint.from_bytes(checkpoint.to_bytes())
    assert again.step == 7 and again.losses == [0.5] and torch.equal(again.adapter["w"], torch.ones(2))


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"steps": 0}, "steps"), ({"steps": 10_001}, "steps"), ({"rank": 0}, "rank"), ({"rank": 129}, "rank"),
        ({"learning_rate": -1e-4}, "learning_rate"), ({"learning_rate": 0.1}, "learning_rate"),
        ({"resolution": 32}, "resolution"), ({"resolution": 520}, "resolution"), ({"checkpoint_every": 0}, "checkpoint_every"),
    ],
)
def test_a_recipe_outside_its_bounds_is_refused_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=f"^{field} "):
        TrainingRecipe(**overrides)


@pytest.mark.parametrize(
    "overrides",
    [{}, {"steps": 1}, {"steps": 10_000}, {"rank": 1}, {"rank": 128}, {"learning_rate": 0.0}, {"learning_rate": 1e-2}, {"resolution": 64}, {"resolution": 1024}],
)
def test_a_recipe_within_its_bounds_is_accepted(overrides):
    TrainingRecipe(**overrides)
