"""Step `generate`: a portrait attempt (its payload names the reference photos) is rendered by the
image-editing model from the person's photos (all of them where the model takes a list, the first
where it takes one) and the edit instruction; a plain generation by the
text-to-image model from its prompt. A portrait of an identity also applies the identity's trained
LoRA from the bucket (through the adapter slots Hub LoRAs use) and names the person in the
instruction as its training captions did. The images are rendered within the model's native budget,
brought to the requested size by the upscaler, and written to S3 with their generation metadata;
the result says how their pixels were made."""

import asyncio
import time

from bullmq import AbortSignal, Job
from PIL import Image

from ..checks.faces import largest_face_box
from ..contracts.payloads import Destination, GenerateInput, GenerateResult, IdentityLora
from ..contracts.references import reference_keys
from ..contracts.step_errors import ContractViolation, DestinationRefused, OutputTooLarge
from ..diffusion.engine import DiffusionEngine, GenerationRequest
from ..diffusion.reference import prepare_reference
from ..diffusion.loras import LoraRequest, StoredLoraRequest
from ..diffusion.upscale_plan import UpscalePlan
from ..diffusion.upscaler import Upscaler
from ..identity.captions import with_trigger_phrase
from ..images import CONTENT_TYPES, decode_rgb, encode
from ..job_events import JobEvents
from ..object_store import ObjectStore
from ..secrets import open_secrets, secrets_binding
from ..settings import WorkerSettings, model_name
from ..step_worker import StepProcessor


def generate_step(settings: WorkerSettings, store: ObjectStore, engine: DiffusionEngine | None, portrait_engine: DiffusionEngine | None = None,
                  events: JobEvents | None = None, upscaler: Upscaler | None = None) -> StepProcessor[GenerateInput, GenerateResult]:
    """`engine`: the text-to-image model (absent on a portrait pool with an editing model);
    `portrait_engine`: the editing model for payloads with a reference photo (absent on the
    generations pool, or where portraits are rendered by `engine` from words alone); `upscaler`:
    the super-resolution models (none: a plain resize)."""
    upscaler = upscaler or Upscaler([])

    async def references_for(payload: GenerateInput, plan: UpscalePlan, count: int) -> tuple[Image.Image, ...]:
        """The first `count` reference photos (as many as the model takes; the caller put the one it
        prefers first), each cropped around its own face at the native size."""
        async def prepared(key: str) -> Image.Image:
            photo = decode_rgb(await asyncio.to_thread(store.get_bytes, key), "reference image")
            face = await asyncio.to_thread(largest_face_box, photo, settings.face_min_score)
            return prepare_reference(photo, plan.native_width, plan.native_height, face)

        return tuple([await prepared(key) for key in reference_keys(payload)[:count]])

    async def identity_loras(identity: IdentityLora | None) -> list[StoredLoraRequest]:
        """The identity's LoRA, by the version of its object in the deployment's bucket (its bytes
        are read only where that version is not loaded already); none without an identity."""
        if not identity:
            return []
        etag = await asyncio.to_thread(store.etag, identity["key"])
        lora = StoredLoraRequest(identity["key"], etag or "", identity.get("scale", 1.0), store.get_bytes_if_present)
        if etag is None:
            raise lora.unusable("is not in the bucket")
        return [lora]

    async def run(payload: GenerateInput, job: Job, signal: AbortSignal) -> GenerateResult:
        started = time.time()
        key = settings.secrets_key.get_secret_value() if settings.secrets_key else None
        destination = payload.get("destination")
        binding = secrets_binding(payload["jobId"], destination)
        secrets = open_secrets(key, binding, payload["secrets"]) if "secrets" in payload else {}
        hf_token = secrets.get("hf_token")
        if destination and "s3" not in secrets:
            raise DestinationRefused("destination needs the bucket's keys in secrets.s3")
        # A caller's bucket: its endpoint is checked and pinned before any GPU work, closed after.
        target = ObjectStore.for_destination(destination, secrets["s3"], settings.destination_allow_private) if destination else store
        try:
            return await render_and_upload(payload, job, signal, started, destination, hf_token, target)
        finally:
            if target is not store:
                target.close()

    async def render_and_upload(payload: GenerateInput, job: Job, signal: AbortSignal, started: float,
                                destination: Destination | None, hf_token: str | None, target: ObjectStore) -> GenerateResult:
        width, height = payload["width"], payload["height"]
        key_prefix = f"{destination['prefix'].rstrip('/')}/" if destination and destination.get("prefix") else ""
        if width * height > settings.max_megapixels * 1_000_000:
            raise OutputTooLarge(f"width x height: {width}x{height} is above this deployment's {settings.max_megapixels} megapixels")
        renderer = portrait_engine if portrait_engine and reference_keys(payload) else engine
        if renderer is None:
            raise ContractViolation("this worker's queue serves portraits with the editing model, and this payload has no reference photo")
        plan = upscaler.plan(width, height, settings.native_max_megapixels, payload.get("upscale", 1))
        identity = payload.get("identityLora")
        request = GenerationRequest(
            prompt=with_trigger_phrase(identity["triggerToken"], payload["prompt"]) if identity else payload["prompt"],
            seed=payload["seed"],
            width=plan.native_width,
            height=plan.native_height,
            num_images=payload["numImages"],
            steps=payload.get("steps", settings.default_steps),
            guidance=payload.get("guidance", settings.default_guidance),
            loras=[LoraRequest(l["repo"], l.get("weight_name"), l.get("scale", 1.0), hf_token) for l in payload["loras"]] + await identity_loras(identity),
            references=await references_for(payload, plan, renderer.max_references) if renderer is portrait_engine else (),
        )
        loop = asyncio.get_running_loop()
        last_report = 0.0

        def on_step(step: int, total: int) -> bool:
            nonlocal last_report
            now = time.monotonic()
            if step == total or now - last_report >= settings.progress_every_s:
                last_report = now
                progress = {"step": step, "total": total}
                asyncio.run_coroutine_threadsafe(job.updateProgress(progress), loop)
                if events:
                    event = {"step": "generate", "attempt": payload["attempt"], "denoise_step": step, "denoise_total": total}
                    asyncio.run_coroutine_threadsafe(events.append(payload["jobId"], "progress", event), loop)
            return signal.aborted

        generation = await asyncio.to_thread(renderer.generate, request, on_step)
        images, pixels = await asyncio.to_thread(upscaler.to_size, generation.images, width, height, plan, lambda: signal.aborted)

        fmt = payload.get("outputFormat", settings.output_format)
        upload_started = time.time()
        results = []
        for index, image in enumerate(images):
            metadata = {"prompt": request.prompt, "seed": request.seed, "steps": request.steps, "guidance": request.guidance,
                        "index": index, "model": model_name(renderer.model), "loras": payload["loras"], "pixels": pixels}
            object_key = f"{key_prefix}{payload['outputPrefix']}/{index}.{fmt}"
            data = await asyncio.to_thread(encode, image, fmt, metadata)
            await asyncio.to_thread(target.put_bytes, object_key, data, CONTENT_TYPES[fmt], {"seed": str(request.seed)})
            image_result = {"key": object_key, "width": image.width, "height": image.height, "contentType": CONTENT_TYPES[fmt]}
            results.append({**image_result, "bucket": target.bucket} if destination else image_result)
        return {
            "images": results,
            "seed": request.seed,
            "timings": {
                "queueWaitSeconds": round(max(0.0, started - job.timestamp / 1000), 3),
                "loraLoadSeconds": round(generation.lora_seconds, 3),
                "denoiseSeconds": round(generation.denoise_seconds, 3),
                "upscaleSeconds": pixels["seconds"],
                "uploadSeconds": round(time.time() - upload_started, 3),
            },
            "pixels": pixels,
        }

    return run
