"""With APEX_GPU_COMPILE the worker compiles each diffusion model's graph before it takes a job (a
render at the native square, logged): counted by torch.compile's own graph count, not timed.
Without it, nothing is rendered at start."""

import logging

import torch
from torch._dynamo.utils import counters

from apex_gpu_worker.contracts.steps import step_catalogue
from apex_gpu_worker.runtime import build_processors


def graphs() -> int:
    return int(counters["stats"]["unique_graphs"])


def test_a_compiled_worker_builds_its_graph_before_the_first_job_and_says_so(settings, caplog):
    torch._dynamo.reset()
    counters.clear()
    settings.compile = True
    queue = step_catalogue(settings.contracts_dir).queue_for("generate", "portrait")
    with caplog.at_level(logging.INFO, logger="apex_gpu_worker"):
        build_processors(settings, (queue,))
    warmed = [r.fields for r in caplog.records if r.getMessage() == "diffusion graph compiled before the first job"]
    assert [w["model"] for w in warmed] == ["kontext"] and warmed[0]["size"] == 272  # the square within 0.08 MP
    assert graphs() > 0
    torch._dynamo.reset()


def test_an_eager_worker_renders_nothing_at_start(settings, caplog):
    torch._dynamo.reset()
    counters.clear()
    queue = step_catalogue(settings.contracts_dir).queue_for("generate", "portrait")
    with caplog.at_level(logging.INFO, logger="apex_gpu_worker"):
        build_processors(settings, (queue,))
    assert not [r for r in caplog.records if r.getMessage() == "diffusion graph compiled before the first job"]
    assert graphs() == 0
