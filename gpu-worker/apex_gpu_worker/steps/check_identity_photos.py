"""Step `check_identity_photos`: whether each photo sent for an identity shows exactly one face of
adequate size, by the rules prepare_identity trains on (identity/photos.py), so POST /identities can
name a refused photo before anything is kept. Short and on the vlm pool, where the face models stay
loaded: it never waits behind a training run."""

import asyncio

from bullmq import AbortSignal, Job

from ..checks.faces import FaceAnalyzer
from ..contracts.payloads import CheckIdentityPhotosInput, CheckIdentityPhotosResult
from ..contracts.step_errors import StepCancelled, UnreadableImage
from ..identity.photos import PhotoRefused, adequate_face
from ..images import decode_rgb
from ..object_store import ObjectStore
from ..settings import WorkerSettings
from ..step_worker import StepProcessor


def check_identity_photos_step(settings: WorkerSettings, store: ObjectStore, faces: FaceAnalyzer) -> StepProcessor[CheckIdentityPhotosInput, CheckIdentityPhotosResult]:
    def checked(index: int, key: str) -> dict:
        try:
            photo = decode_rgb(store.get_bytes(key), f"photo {index}")
        except UnreadableImage:
            return {"accepted": False, "reason": "it is not a readable image"}
        _, face = adequate_face(photo, faces, settings.face_min_side_ratio)
        if isinstance(face, PhotoRefused):
            return {"accepted": False, "reason": face.reason}
        return {"accepted": True, "faceBox": [int(v) for v in face.box]}

    async def run(payload: CheckIdentityPhotosInput, job: Job, signal: AbortSignal) -> CheckIdentityPhotosResult:
        photos = []
        for index, key in enumerate(payload["photoKeys"]):
            if signal.aborted:
                raise StepCancelled("cancelled by request")
            photos.append(await asyncio.to_thread(checked, index, key))
        return {"photos": photos}

    return run
