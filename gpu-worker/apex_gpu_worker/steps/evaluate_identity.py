"""Step `evaluate_identity`: whether an identity's training helped. Each held-out portrait is rendered
on the training pipeline twice with the same seed, first without the identity's LoRA and then with
it (loaded from S3 under an adapter of its own and taken out again, so the pipeline trains the next
identity as it was), from `a photo of <token> person, <prompt>` as the training captions begin.
Every render goes to S3 under the identity's prefix; its largest face is compared with every photo
embedding prepare_identity kept (identity/evaluation.py), and the result sets the median distance
with the LoRA beside the one without it."""

import asyncio
import tempfile
import threading
import time
from pathlib import Path

import torch
from bullmq import AbortSignal, Job
from PIL import Image

from ..checks.faces import FaceAnalyzer
from ..contracts.payloads import EvaluateIdentityInput, EvaluateIdentityResult
from ..contracts.step_errors import StepCancelled
from ..identity.captions import with_trigger_phrase
from ..identity.embeddings import identity_faces
from ..identity.evaluation import likeness, summary
from ..images import CONTENT_TYPES, encode
from ..object_store import ObjectStore
from ..settings import WorkerSettings
from ..step_worker import StepProcessor

ADAPTER = "identity-evaluation"
LORA_FILE = "lora.safetensors"
DEFAULT_COUNT = 3
# Portraits no training caption describes (they say only `a photo of <token> person`): a LoRA that
# learnt the person, not the photos, keeps the likeness in other clothes, settings and light.
HELD_OUT_PROMPTS = (
    "in a navy suit, in front of a grey studio backdrop, soft light",
    "outdoors in a park, smiling, warm afternoon light",
    "in a white shirt, in a bright modern office",
    "in a black turtleneck, dramatic side light, dark background",
    "in a denim jacket, on a city street, overcast light",
    "wearing glasses, in a library, window light",
    "in a knit sweater, at home by a window, natural light",
    "in a blazer, on a conference stage, spotlight",
)


def held_out_prompts(payload: EvaluateIdentityInput) -> list[str]:
    return list(payload.get("prompts") or HELD_OUT_PROMPTS[: payload.get("count", DEFAULT_COUNT)])


def evaluate_identity_step(settings: WorkerSettings, store: ObjectStore, pipe, faces: FaceAnalyzer,
                           lock: "threading.Lock | None" = None) -> StepProcessor[EvaluateIdentityInput, EvaluateIdentityResult]:
    """`pipe`: the training pipeline; `lock`: the one train_identity holds while it trains on it."""
    lock = lock or threading.Lock()

    def render(prompt: str, payload: EvaluateIdentityInput, signal: AbortSignal) -> Image.Image:
        if signal.aborted:
            raise StepCancelled("cancelled by request")

        def after_step(pipeline, step: int, _timestep, tensors: dict) -> dict:
            if signal.aborted:
                pipeline._interrupt = True  # diffusers stops before the next step
            return tensors

        generator = torch.Generator("cpu").manual_seed(payload["seed"])
        with torch.inference_mode():
            output = pipe(prompt=prompt, width=payload["size"], height=payload["size"], generator=generator,
                          num_inference_steps=payload.get("steps", settings.default_steps), guidance_scale=settings.default_guidance,
                          callback_on_step_end=after_step)
        if getattr(pipe, "_interrupt", False):
            raise StepCancelled("cancelled by request")
        return output.images[0]

    def loaded_adapter() -> bool:
        return any(ADAPTER in names for names in pipe.get_list_adapters().values())

    def render_all(prompts: list[str], lora: bytes, payload: EvaluateIdentityInput, signal: AbortSignal) -> list[tuple[Image.Image, Image.Image]]:
        """(without, with) the LoRA for each prompt."""
        with lock:
            without = [render(p, payload, signal) for p in prompts]
            with tempfile.TemporaryDirectory() as folder:
                (Path(folder) / LORA_FILE).write_bytes(lora)
                try:
                    pipe.load_lora_weights(folder, weight_name=LORA_FILE, adapter_name=ADAPTER)
                    with_lora = [render(p, payload, signal) for p in prompts]
                finally:
                    if loaded_adapter():
                        pipe.delete_adapters(ADAPTER)
            return list(zip(without, with_lora))

    async def run(payload: EvaluateIdentityInput, job: Job, signal: AbortSignal) -> EvaluateIdentityResult:
        started = time.time()
        references = [face.embedding for face in identity_faces(await asyncio.to_thread(store.get_bytes, payload["embeddingsKey"]))]
        lora = await asyncio.to_thread(store.get_bytes, payload["loraKey"])
        token = payload["triggerToken"]
        prompts = [with_trigger_phrase(token, prompt) for prompt in held_out_prompts(payload)]
        render_started = time.perf_counter()
        pairs = await asyncio.to_thread(render_all, prompts, lora, payload, signal)
        render_seconds = time.perf_counter() - render_started
        upload_started = time.perf_counter()
        renders, likenesses = [], []
        for index, (prompt, pair) in enumerate(zip(prompts, pairs)):
            for with_lora, image in zip((False, True), pair):
                key = f"{payload['outputPrefix']}/{index}.{'with' if with_lora else 'without'}-lora.png"
                data = await asyncio.to_thread(encode, image, "png", {"prompt": prompt, "seed": payload["seed"], "lora": with_lora})
                await asyncio.to_thread(store.put_bytes, key, data, CONTENT_TYPES["png"])
                alike = await asyncio.to_thread(likeness, image, faces, references)
                likenesses.append((with_lora, alike))
                renders.append({"key": key, "prompt": prompt, "withLora": with_lora, "faceFound": alike.face_found, "distance": alike.distance})
        return {
            "renders": renders,
            "summary": summary(likenesses),
            "timings": {
                "queueWaitSeconds": round(max(0.0, started - job.timestamp / 1000), 3),
                "renderSeconds": round(render_seconds, 3),
                "uploadAndFaceSeconds": round(time.perf_counter() - upload_started, 3),
            },
        }

    return run
