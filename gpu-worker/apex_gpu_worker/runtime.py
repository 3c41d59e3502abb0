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
from .settings import DEFAULT_CACHE, WorkerSettings
from .step_worker import StepProcessor, start_step_worker

log = logging.getLogger("apex_gpu_worker")

ROLES = {"diffusion": ("generate",), "vlm": ("prompt", "validate", "report"), "all": ("prompt", "generate", "validate", "report")}


def _uses_tiny_models(settings: WorkerSettings) -> bool:
    tiny_root = DEFAULT_CACHE / "tiny-models"
    return Path(settings.flux_model).parent == tiny_root or Path(settings.vlm_model).parent == tiny_root


def build_processors(settings: WorkerSettings, queues: tuple[str, ...]) -> dict[str, StepProcessor]:
    """Loads only what the queues need: FLUX for generate, the VLM and face models for the rest."""
    store = ObjectStore(settings)
    if _uses_tiny_models(settings):
        from .tiny_models import ensure_tiny_models

        log.warning("using tiny random-weight models: images and judgements are noise; "
                    "set APEX_GPU_FLUX_MODEL and APEX_GPU_VLM_MODEL (or the openai backend) for real ones")
        ensure_tiny_models(DEFAULT_CACHE / "tiny-models")
    processors: dict[str, StepProcessor] = {}
    if "generate" in queues:
        from .diffusion.flux_engine import FluxEngine
        from .steps.generate import generate_step

        events = JobEvents(settings.redis_url, settings.queue_prefix)
        processors["generate"] = generate_step(settings, store, FluxEngine(settings), events)
    vlm_queues = {"prompt", "validate", "report"} & set(queues)
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
    from .diffusion.flux_engine import resolve_device, resolve_dtype
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
        cancellations = CancellationListener(settings.redis_url, settings.queue_prefix)
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
