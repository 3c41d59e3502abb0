"""What a worker process runs: the models for its role, loaded once, and one BullMQ worker per
queue it serves."""

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path

from bullmq import Worker

from .cancellation import CancellationListener
from .job_events import JobEvents
from .object_store import ObjectStore
from .payloads import StepName
from .queues import PORTRAIT_GENERATE, QUEUE_STEPS
from .redis_keys import RedisKeys
from .settings import TINY_MODELS, WorkerSettings
from .step_worker import StepProcessor, start_step_worker

log = logging.getLogger("apex_gpu_worker")

# The diffusion models serve these steps; the VLM (with the face models) every other one. A role's
# queues are those carrying its steps (generate has two: generations and portraits).
DIFFUSION_STEPS: tuple[StepName, ...] = ("generate",)
ROLES: dict[str, tuple[str, ...]] = {
    "diffusion": tuple(queue for queue, step in QUEUE_STEPS.items() if step in DIFFUSION_STEPS),
    "vlm": tuple(queue for queue, step in QUEUE_STEPS.items() if step not in DIFFUSION_STEPS),
    "all": tuple(QUEUE_STEPS),
}


def diffusion_models(settings: WorkerSettings, queues: tuple[str, ...]) -> tuple[bool, bool]:
    """Which diffusion models these queues need: the text-to-image one for generations (and for
    portraits when no editing model is configured), the editing one for portraits."""
    portraits = PORTRAIT_GENERATE in queues
    return "generate" in queues or (portraits and not settings.portrait_model), portraits and bool(settings.portrait_model)


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
    if set(queues) & set(ROLES["vlm"]) and settings.vlm_backend == "transformers":
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
    for portraits, the VLM and face models for the rest. One processor per queue."""
    _check_tiny_models(settings, queues)
    store = ObjectStore(settings)
    processors: dict[str, StepProcessor] = {}
    needs_text, needs_portraits = diffusion_models(settings, queues)
    if needs_text or needs_portraits:
        from .diffusion.engine import DiffusionEngine
        from .diffusion.upscaler import Upscaler
        from .steps.generate import generate_step

        events = JobEvents(settings.redis_url, RedisKeys(settings.contracts_dir, settings.queue_prefix))
        # The upscalers first: a bad APEX_GPU_UPSCALER_MODELS stops the worker in seconds, not after
        # minutes of loading the diffusion models.
        upscaler = Upscaler.from_settings(settings)
        engine = DiffusionEngine(settings, settings.flux_model) if needs_text else None
        portraits = DiffusionEngine(settings, settings.portrait_model, editing=True, share_with=engine) if needs_portraits else None
        for queue in (q for q in queues if q in ROLES["diffusion"]):
            processors[queue] = generate_step(settings, store, engine, portraits if queue == PORTRAIT_GENERATE else None, events, upscaler)
    vlm_queues = [queue for queue in queues if queue in ROLES["vlm"]]
    if vlm_queues:
        from .checks.faces import FaceAnalyzer
        from .steps.prompt import prompt_step
        from .steps.report import report_step
        from .steps.validate import validate_step

        vlm = build_vlm(settings)
        faces = FaceAnalyzer(settings.face_min_score)
        makers = {
            "prompt": lambda: prompt_step(settings, store, vlm),
            "validate": lambda: validate_step(settings, store, vlm, faces),
            "report": lambda: report_step(store, vlm),
        }
        processors.update({queue: makers[queue]() for queue in vlm_queues})
    return processors


def build_vlm(settings: WorkerSettings):
    if settings.vlm_backend == "openai":
        from .vlm.openai_backend import OpenAIBackend

        key = settings.vlm_api_key.get_secret_value() if settings.vlm_api_key else None
        return OpenAIBackend(settings.vlm_base_url, settings.vlm_served_model, key, settings.vlm_max_new_tokens, settings.vlm_timeout_s)
    from .devices import resolve_device, resolve_dtype
    from .vlm.transformers_backend import TransformersBackend

    device = resolve_device(settings.device)
    return TransformersBackend(settings.vlm_model, device, resolve_dtype(settings.dtype, device), settings.vlm_max_new_tokens)


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
