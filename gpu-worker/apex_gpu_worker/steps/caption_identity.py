"""Step `caption_identity`: a caption per framed photo of an identity, by the VLM. It describes only
what is not the person (clothing, setting, light, framing, expression; vlm/caption_answer.py), so
training ties those to the words and what stays the same, the face, to the trigger token; the caption
is `a photo of <token> person, <clothing>, <setting>, ...` (identity/captions.py). A photo whose
answer stays unusable gets the plain `a photo of <token> person`: a caption without a description
trains the likeness as well, only less of what changes is kept apart from it."""

import asyncio
import logging

from bullmq import AbortSignal, Job

from ..contracts.payloads import CaptionIdentityInput, CaptionIdentityResult
from ..contracts.step_errors import StepCancelled, UnparseableAnswer
from ..identity.captions import caption
from ..images import decode_rgb
from ..object_store import ObjectStore
from ..step_worker import StepProcessor
from ..vlm.backend import VlmBackend, ask_json
from ..vlm.caption_answer import CAPTION_ANSWER, CAPTION_ASPECTS
from ..vlm.templates import render

log = logging.getLogger("apex_gpu_worker.caption_identity")


def caption_identity_step(store: ObjectStore, vlm: VlmBackend) -> StepProcessor[CaptionIdentityInput, CaptionIdentityResult]:
    instruction = render("caption_identity")

    def captioned(identity_id: str, index: int, key: str, token: str) -> str:
        photo = decode_rgb(store.get_bytes(key), f"photo {index}")
        try:
            answer = ask_json(vlm, [photo], instruction, CAPTION_ANSWER)
        except UnparseableAnswer as err:
            # The photo, the answer and the caption describe the person: the log names the photo by its index only.
            log.warning("caption without a description: the VLM's answer was unusable",
                        extra={"fields": {"identityId": identity_id, "photo": index, "problem": str(err)}})
            return caption(token, [])
        return caption(token, [answer[aspect] for aspect in CAPTION_ASPECTS])

    async def run(payload: CaptionIdentityInput, job: Job, signal: AbortSignal) -> CaptionIdentityResult:
        photos = []
        for index, photo in enumerate(payload["photos"]):
            if signal.aborted:
                raise StepCancelled("cancelled by request")
            text = await asyncio.to_thread(captioned, payload["identityId"], index, photo["key"], payload["triggerToken"])
            photos.append({"key": photo["key"], "caption": text})
        return {"photos": photos}

    return run
