"""Step `train_identity`: a LoRA learnt from an identity's prepared photos on the training pool's
pipeline (the portrait model, or APEX_GPU_TRAINING_MODEL), by our own loop (training/). The loop runs
in a thread: blocking GPU work on the event loop would starve the job's lock renewal and the
progress reports. Every `checkpointEvery` steps a checkpoint goes to S3, and a retried step (a
SIGKILLed or stalled worker) resumes from it, so at most one interval is repeated; a cancel stops
the run between steps; the LoRA goes to S3 as a .safetensors file diffusers loads."""

import asyncio
import threading
import time

from bullmq import AbortSignal, Job
from PIL import Image

from ..contracts.payloads import TrainIdentityInput, TrainIdentityResult
from ..contracts.step_errors import StepCancelled
from ..images import decode_rgb
from ..job_events import JobEvents
from ..object_store import ObjectStore
from ..settings import WorkerSettings
from ..step_worker import StepProcessor
from ..training.checkpoint import TrainingCheckpoint
from ..training.lora_trainer import LoraTrainer, TrainingProgress
from ..training.recipe import TrainingRecipe

STEP = "train_identity"


def recipe_of(payload: TrainIdentityInput) -> TrainingRecipe:
    r = payload["recipe"]
    return TrainingRecipe(steps=r["steps"], rank=r["rank"], learning_rate=r["learningRate"], resolution=r["resolution"],
                          seed=r["seed"], checkpoint_every=r["checkpointEvery"])


def train_identity_step(settings: WorkerSettings, store: ObjectStore, pipe, events: JobEvents | None = None,
                        lock: "threading.Lock | None" = None) -> StepProcessor[TrainIdentityInput, TrainIdentityResult]:
    """`pipe`: the training pipeline, this process's own; `lock`: held while a run trains on it, and
    by evaluate_identity while it renders on it."""
    training = lock or threading.Lock()

    def photo(key: str) -> Image.Image:
        return decode_rgb(store.get_bytes(key), "prepared photo")

    async def run(payload: TrainIdentityInput, job: Job, signal: AbortSignal) -> TrainIdentityResult:
        started = time.time()
        images = [await asyncio.to_thread(photo, p["key"]) for p in payload["photos"]]
        checkpoint = await asyncio.to_thread(store.get_bytes_if_present, payload["checkpointKey"])
        loop = asyncio.get_running_loop()
        last_report = 0.0

        def on_progress(progress: TrainingProgress) -> None:
            nonlocal last_report
            now = time.monotonic()
            if progress.step == progress.total or now - last_report >= settings.progress_every_s:
                last_report = now
                loss = round(progress.loss, 6)
                asyncio.run_coroutine_threadsafe(job.updateProgress({"step": progress.step, "total": progress.total, "loss": loss}), loop)
                if events:
                    event = {"step": STEP, "train_step": progress.step, "train_total": progress.total, "loss": loss}
                    asyncio.run_coroutine_threadsafe(events.append(payload["identityId"], "progress", event), loop)

        def save(state: TrainingCheckpoint) -> None:
            # In the training thread, before the next step: a checkpoint is in S3 before work goes on.
            store.put_bytes(payload["checkpointKey"], state.to_bytes(), "application/octet-stream", {"step": str(state.step)})

        def train() -> tuple[int, bool, list[float], bytes, float]:
            with training:
                trainer = LoraTrainer(pipe, recipe_of(payload), images, [p["caption"] for p in payload["photos"]])
                try:
                    if checkpoint is not None:
                        trainer.resume(TrainingCheckpoint.from_bytes(checkpoint))
                    resumed_from = trainer.step
                    denoise_started = time.perf_counter()
                    outcome = trainer.run(on_progress, lambda: signal.aborted, save)
                    seconds = time.perf_counter() - denoise_started
                    if outcome.cancelled:
                        return resumed_from, True, outcome.losses, b"", seconds
                    # The finished run's checkpoint too: a retry after the LoRA is written (its
                    # completion lost) resumes at the end and only writes the LoRA again.
                    save(trainer.checkpoint())
                    return resumed_from, False, outcome.losses, trainer.export_lora(), seconds
                finally:
                    trainer.close()

        resumed_from, cancelled, losses, lora, train_seconds = await asyncio.to_thread(train)
        if cancelled:
            raise StepCancelled("cancelled by request")
        steps = payload["recipe"]["steps"]
        upload_started = time.time()
        await asyncio.to_thread(store.put_bytes, payload["loraKey"], lora, "application/octet-stream", {"steps": str(steps)})
        return {
            "loraKey": payload["loraKey"],
            "stepsDone": steps,
            "lossAverage": sum(losses) / len(losses) if losses else 0.0,
            "recentLosses": [round(v, 6) for v in losses],
            "resumedFromStep": resumed_from,
            "timings": {
                "queueWaitSeconds": round(max(0.0, started - job.timestamp / 1000), 3),
                "trainSeconds": round(train_seconds, 3),
                "uploadSeconds": round(time.time() - upload_started, 3),
            },
        }

    return run
