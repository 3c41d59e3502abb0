"""Step `prepare_identity`: an identity's photos as training and the identity gate need them. Each
photo is decoded, turned upright and refused unless it shows exactly one face of adequate size (the
refusal names its index and why); the rest are framed around the face as squares at the training
resolution and written to S3 under the identity's prefix, each with the plain caption `a photo of
<token> person` (caption_identity, on the VLM pool, adds what each photo shows), and the face
embeddings go beside them as one small JSON for the gate."""

import asyncio
import io
import json

from bullmq import AbortSignal, Job

from ..checks.faces import FaceAnalyzer
from ..contracts.payloads import PrepareIdentityInput, PrepareIdentityResult
from ..contracts.step_errors import IdentityPhotoRefused, StepCancelled, UnreadableImage
from ..identity.captions import trigger_phrase
from ..identity.photos import PhotoRefused, PreparedPhoto, prepare_photo
from ..images import decode_rgb
from ..object_store import ObjectStore
from ..settings import WorkerSettings
from ..step_worker import StepProcessor


def prepare_identity_step(settings: WorkerSettings, store: ObjectStore, faces: FaceAnalyzer) -> StepProcessor[PrepareIdentityInput, PrepareIdentityResult]:
    def prepared(index: int, key: str, resolution: int) -> PreparedPhoto:
        try:
            photo = decode_rgb(store.get_bytes(key), f"photo {index}")
        except UnreadableImage as err:
            raise IdentityPhotoRefused(str(err), index=str(index), reason="it is not a readable image") from None
        outcome = prepare_photo(photo, faces, resolution, settings.face_min_side_ratio)
        if isinstance(outcome, PhotoRefused):
            raise IdentityPhotoRefused(f"photo {index} ({key}): {outcome.reason}", index=str(index), reason=outcome.reason)
        return outcome

    async def run(payload: PrepareIdentityInput, job: Job, signal: AbortSignal) -> PrepareIdentityResult:
        # Every photo is checked before anything is written: a refused set leaves nothing behind.
        photos = []
        for index, key in enumerate(payload["photoKeys"]):
            if signal.aborted:
                raise StepCancelled("cancelled by request")
            photos.append(await asyncio.to_thread(prepared, index, key, payload["resolution"]))
        prefix = payload["outputPrefix"]
        # The plain caption; caption_identity (the VLM pool) writes each photo's own description after it.
        caption = trigger_phrase(payload["triggerToken"])
        results = []
        for index, photo in enumerate(photos):
            buffer = io.BytesIO()
            photo.image.save(buffer, format="PNG")
            key = f"{prefix}/{index}.png"
            await asyncio.to_thread(store.put_bytes, key, buffer.getvalue(), "image/png")
            results.append({"key": key, "caption": caption})
        embeddings = {
            "model": "dlib_face_recognition_resnet_model_v1",
            "photos": [{"key": r["key"], "embedding": [float(v) for v in p.embedding], "faceBox": [int(v) for v in p.face]} for r, p in zip(results, photos)],
        }
        embeddings_key = f"{prefix}/embeddings.json"
        await asyncio.to_thread(store.put_bytes, embeddings_key, json.dumps(embeddings).encode(), "application/json")
        return {"photos": results, "embeddingsKey": embeddings_key}

    return run
