"""What a worker process runs: the models its queues need, loaded once, one processor per queue
made by its step's maker (STEP_PROCESSORS), and one BullMQ worker per queue."""

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from bullmq import Worker

from .cancellation import CancellationListener
from .contracts.payloads import StepName
from .contracts.redis_keys import RedisKeys
from .contracts.steps import step_catalogue
from .job_events import JobEvents
from .object_store import ObjectStore
from .settings import TINY_MODELS, WorkerSettings
from .step_worker import StepProcessor, start_step_worker
from .vlm.answers import JUDGE_ANSWER, PROMPT_ANSWER, PROMPT_REWRITE_ANSWER, REPORT_ANSWER
from .vlm.caption_answer import CAPTION_ANSWER

log = logging.getLogger("apex_gpu_worker")


def diffusion_models(settings: WorkerSettings, queues: tuple[str, ...]) -> tuple[bool, bool]:
    """Which diffusion models these queues need: the text-to-image one for generations (and for
    portraits when no editing model is configured), the editing one for portraits."""
    catalogue = step_catalogue(settings.contracts_dir)
    generations = catalogue.queue_for("generate", "generation") in queues
    portraits = catalogue.queue_for("generate", "portrait") in queues
    return generations or (portraits and not settings.portrait_model), portraits and bool(settings.portrait_model)


class StepModels:
    """What the processors of one process share, each loaded once, when the first processor that
    needs it is made."""

    def __init__(self, settings: WorkerSettings, queues: tuple[str, ...]):
        self.settings = settings
        self.portrait_queue = step_catalogue(settings.contracts_dir).queue_for("generate", "portrait")
        self._needs_text, self._needs_portraits = diffusion_models(settings, queues)
        if self._needs_text or self._needs_portraits:
            # The upscalers before any model: a bad APEX_GPU_UPSCALER_MODELS stops the worker in
            # seconds, not after minutes of loading the diffusion models or the VLM.
            self.upscaler

    @cached_property
    def store(self) -> ObjectStore:
        return ObjectStore(self.settings)

    @cached_property
    def events(self) -> JobEvents:
        return JobEvents(self.settings.redis_url, RedisKeys(self.settings.contracts_dir, self.settings.queue_prefix))

    @cached_property
    def upscaler(self):
        from .diffusion.upscaler import Upscaler

        return Upscaler.from_settings(self.settings)

    @cached_property
    def text_engine(self):
        """The text-to-image model, where these queues need it."""
        from .diffusion.engine import DiffusionEngine

        return DiffusionEngine(self.settings, self.settings.flux_model) if self._needs_text else None

    @cached_property
    def portrait_engine(self):
        """The image-editing model, where these queues need it; it shares what it can with the text-to-image one."""
        from .diffusion.engine import DiffusionEngine

        if not self._needs_portraits:
            return None
        return DiffusionEngine(self.settings, self.settings.portrait_model, editing=True, share_with=self.text_engine)

    @cached_property
    def training_pipeline(self):
        """The pipeline the training pool learns LoRAs on, this process's own (its adapters come and
        go with each run): APEX_GPU_TRAINING_MODEL, else the portrait model."""
        from diffusers import DiffusionPipeline

        from .devices import resolve_device, resolve_dtype

        device = resolve_device(self.settings.device)
        token = self.settings.hf_token.get_secret_value() if self.settings.hf_token else None
        pipe = DiffusionPipeline.from_pretrained(training_model(self.settings), dtype=resolve_dtype(self.settings.dtype, device), token=token)
        pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    @cached_property
    def training_lock(self) -> threading.Lock:
        """Held by whichever step uses the training pipeline: a run trains on it with its adapter,
        an evaluation renders with another; one at a time."""
        return threading.Lock()

    @cached_property
    def vlm(self):
        return build_vlm(self.settings)

    @cached_property
    def faces(self):
        from .checks.faces import FaceAnalyzer

        return FaceAnalyzer(self.settings.face_min_score)


def _generate(models: StepModels, queue: str) -> StepProcessor:
    from .steps.generate import generate_step

    portraits = models.portrait_engine if queue == models.portrait_queue else None
    return generate_step(models.settings, models.store, models.text_engine, portraits, models.events, models.upscaler)


def _prompt(models: StepModels, queue: str) -> StepProcessor:
    from .steps.prompt import prompt_step

    return prompt_step(models.settings, models.store, models.vlm)


def _validate(models: StepModels, queue: str) -> StepProcessor:
    from .steps.validate import validate_step

    return validate_step(models.settings, models.store, models.vlm, models.faces)


def _report(models: StepModels, queue: str) -> StepProcessor:
    from .steps.report import report_step

    return report_step(models.store, models.vlm)


def _caption_identity(models: StepModels, queue: str) -> StepProcessor:
    from .steps.caption_identity import caption_identity_step

    return caption_identity_step(models.store, models.vlm)


def _prepare_identity(models: StepModels, queue: str) -> StepProcessor:
    from .steps.prepare_identity import prepare_identity_step

    return prepare_identity_step(models.settings, models.store, models.faces)


def _check_identity_photos(models: StepModels, queue: str) -> StepProcessor:
    from .steps.check_identity_photos import check_identity_photos_step

    return check_identity_photos_step(models.settings, models.store, models.faces)


def _train_identity(models: StepModels, queue: str) -> StepProcessor:
    from .steps.train_identity import train_identity_step

    return train_identity_step(models.settings, models.store, models.training_pipeline, models.events, models.training_lock)


def _evaluate_identity(models: StepModels, queue: str) -> StepProcessor:
    from .steps.evaluate_identity import evaluate_identity_step

    return evaluate_identity_step(models.settings, models.store, models.training_pipeline, models.faces, models.training_lock)


# Makes a step's processor for one of its queues. A new GPU step (its queue and pool come from
# contracts/steps.json) needs its entry here and its module in steps/.
STEP_PROCESSORS: dict[StepName, Callable[[StepModels, str], StepProcessor]] = {
    "prompt": _prompt,
    "generate": _generate,
    "validate": _validate,
    "report": _report,
    "caption_identity": _caption_identity,
    "prepare_identity": _prepare_identity,
    "check_identity_photos": _check_identity_photos,
    "train_identity": _train_identity,
    "evaluate_identity": _evaluate_identity,
}


# The answers each VLM step asks for: their JSON grammars are compiled when the worker starts, not
# by its first job (a step of the vlm pool without an entry fails tests/test_vlm_warmup.py).
VLM_ANSWERS: dict[StepName, tuple[dict, ...]] = {
    "prompt": (PROMPT_ANSWER, PROMPT_REWRITE_ANSWER),
    "validate": (JUDGE_ANSWER,),
    "report": (REPORT_ANSWER,),
    "caption_identity": (CAPTION_ANSWER,),
    "check_identity_photos": (),  # on the vlm pool for its face models; asks the VLM nothing
}


def training_model(settings: WorkerSettings) -> str:
    """The base LoRAs are learnt on: APEX_GPU_TRAINING_MODEL, else the model portraits are rendered with."""
    return settings.training_model or settings.portrait_model or settings.flux_model


def _check_tiny_models(settings: WorkerSettings, queues: tuple[str, ...]) -> None:
    """The model settings default to tiny random-weight models for development, which the worker
    does not build (dev_support/tiny_models.py does): where these queues load them, it says so, and
    stops with the command that builds them when they are missing."""
    loaded = {}
    text, portraits = diffusion_models(settings, queues)
    if text:
        loaded["APEX_GPU_FLUX_MODEL"] = Path(settings.flux_model)
    if portraits:
        loaded["APEX_GPU_PORTRAIT_MODEL"] = Path(settings.portrait_model)
    if text or portraits:
        loaded.update({"APEX_GPU_UPSCALER_MODELS": Path(entry) for entry in settings.upscaler_models if Path(entry).parent == TINY_MODELS})
    catalogue = step_catalogue(settings.contracts_dir)
    if any(catalogue.step_of(q) in ("train_identity", "evaluate_identity") for q in queues):
        setting = "APEX_GPU_TRAINING_MODEL" if settings.training_model else "APEX_GPU_PORTRAIT_MODEL" if settings.portrait_model else "APEX_GPU_FLUX_MODEL"
        loaded[setting] = Path(training_model(settings))
    if any(catalogue.queues[q].pool == "vlm" for q in queues) and settings.vlm_backend == "transformers":
        loaded["APEX_GPU_VLM_MODEL"] = Path(settings.vlm_model)
    tiny = {name: path for name, path in loaded.items() if path.parent == TINY_MODELS}
    if missing := " and ".join(name for name, path in tiny.items() if not path.is_dir()):
        raise SystemExit(f"the tiny development models are not built ({missing} default to them, in {TINY_MODELS}): "
                         f"run `.venv/bin/python -m dev_support.tiny_models` in gpu-worker/, or set {missing} to real models")
    if tiny:
        log.warning("using tiny random-weight models: images and judgements are noise; "
                    "set APEX_GPU_FLUX_MODEL, APEX_GPU_PORTRAIT_MODEL, APEX_GPU_UPSCALER_MODELS and APEX_GPU_VLM_MODEL (or the openai backend) for real ones")


def build_processors(settings: WorkerSettings, queues: tuple[str, ...]) -> dict[str, StepProcessor]:
    """Loads only what the queues need: the text-to-image model for generations, the editing model
    for portraits, the VLM and face models for the rest. One processor per queue, by its step."""
    _check_tiny_models(settings, queues)
    catalogue = step_catalogue(settings.contracts_dir)
    models = StepModels(settings, queues)
    processors = {queue: STEP_PROCESSORS[catalogue.step_of(queue)](models, queue) for queue in queues}
    warm_up(models, [catalogue.step_of(queue) for queue in queues])
    return processors


def warm_up(models: StepModels, steps: list[StepName]) -> None:
    """What a first job would otherwise build, built before the worker takes one: the JSON grammar
    of every answer these steps ask the VLM for, and the compiled graph of each diffusion model loaded."""
    for engine in (models.__dict__.get("text_engine"), models.__dict__.get("portrait_engine")):
        if engine is not None and (warmed := engine.warm()):
            log.info("diffusion graph compiled before the first job", extra={"fields": warmed})
    schemas = tuple({id(schema): schema for step in steps for schema in VLM_ANSWERS.get(step, ())}.values())
    if schemas:
        started = time.perf_counter()
        built = models.vlm.warm(schemas)
        log.info("VLM warmed before the first job", extra={"fields": {
            "answers": len(schemas), **built, "seconds": round(time.perf_counter() - started, 2)}})


def build_vlm(settings: WorkerSettings):
    if settings.vlm_backend == "openai":
        from .vlm.openai_backend import OpenAIBackend

        key = settings.vlm_api_key.get_secret_value() if settings.vlm_api_key else None
        return OpenAIBackend(settings.vlm_base_url, settings.vlm_served_model, key, settings.vlm_max_new_tokens, settings.vlm_timeout_s)
    from .devices import resolve_device, resolve_dtype
    from .vlm.transformers_backend import TransformersBackend

    device = resolve_device(settings.device)
    return TransformersBackend(settings.vlm_model, device, resolve_dtype(settings.dtype, device), settings.vlm_max_new_tokens,
                               compile=settings.vlm_compile, cache_length=settings.vlm_cache_length)


@dataclass
class WorkerRuntime:
    settings: WorkerSettings
    cancellations: CancellationListener
    workers: list[Worker] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: WorkerSettings, processors: dict[str, StepProcessor]) -> "WorkerRuntime":
        cancellations = CancellationListener(settings.redis_url, RedisKeys(settings.contracts_dir, settings.queue_prefix))
        await cancellations.start()
        runtime = cls(settings, cancellations)
        runtime.workers = [start_step_worker(q, p, settings, cancellations) for q, p in processors.items()]
        log.info("GPU worker ready", extra={"fields": {"queues": list(processors), "concurrency": settings.concurrency}})
        return runtime

    async def stop(self) -> None:
        """Stops taking jobs and lets the ones in hand finish within the grace period; past it the
        workers close hard, the jobs' locks lapse and BullMQ hands them to another worker."""
        try:
            await asyncio.wait_for(asyncio.gather(*(w.close() for w in self.workers)), self.settings.shutdown_grace_s)
        except asyncio.TimeoutError:
            log.warning("jobs still running after the grace period; handing them back")
            await asyncio.gather(*(w.close(force=True) for w in self.workers), return_exceptions=True)
        await self.cancellations.close()
        log.info("GPU worker stopped")
