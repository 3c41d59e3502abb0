"""Step `prompt`: the VLM writes, for the model that renders the portrait, this attempt's prompt: an
edit instruction (what to change, what to keep) for an image-editing model, or a description of the
person and the portrait for a text-to-image model. The previous attempt's validation feedback
refines it. What the photo tells is the same in every attempt of a job: the first attempt looks at
the photo and describes the person (the answer's subject), a later one on the same worker writes
from that description and the feedback, without the photo (with SmolVLM about 1,400 of the first
question's 2,000 prompt tokens) and without writing the description again."""

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable

from bullmq import AbortSignal, Job
from PIL import Image

from ..contracts.payloads import PromptInput, PromptResult
from ..contracts.vocabulary import phrases
from ..images import decode_rgb
from ..object_store import ObjectStore
from ..settings import WorkerSettings
from ..step_worker import StepProcessor
from ..vlm.answers import PROMPT_ANSWER, PROMPT_REWRITE_ANSWER
from ..vlm.backend import VlmBackend, ask_json
from ..vlm.templates import render


class PersonDescriptions:
    """What the VLM saw in a job's photo (the subject of its first prompt answer), by job and photo,
    so the job's later attempts on this worker do not look again. Bounded, least recently used first
    out; held in memory only (it describes a person), never logged."""

    def __init__(self, capacity: int = 256):
        self._capacity = capacity
        self._cache: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._lock = threading.Lock()  # steps call it from worker threads
        self.computed = 0  # descriptions written from a photo (the rest were reused)

    def get(self, key: tuple[str, str]) -> str | None:
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
            return self._cache.get(key)

    def put(self, key: tuple[str, str], subject: str) -> None:
        with self._lock:
            self.computed += 1
            self._cache[key] = subject
            if len(self._cache) > self._capacity:
                self._cache.popitem(last=False)


def write_prompt(settings: WorkerSettings, vlm: VlmBackend, descriptions: PersonDescriptions, payload: PromptInput,
                 reference: Callable[[], Image.Image]) -> dict:
    """The VLM's answer for this attempt: from the photo (`reference` fetches it) when the job's
    person is not described yet, else from the description."""
    previous = payload["previous"]
    template = "prompt_edit" if settings.portrait_model else "prompt"
    requirements = {**phrases(settings.contracts_dir, payload["parameters"]),
                    "previous": render(f"{template}_previous", **previous) if previous else ""}
    key = (payload["jobId"], payload["referenceImageKey"])
    if (subject := descriptions.get(key)) is not None:
        return ask_json(vlm, [], render(f"{template}_described", subject=subject, **requirements), PROMPT_REWRITE_ANSWER)
    answer = ask_json(vlm, [reference()], render(template, **requirements), PROMPT_ANSWER)
    descriptions.put(key, answer["subject"])
    return answer


def prompt_step(settings: WorkerSettings, store: ObjectStore, vlm: VlmBackend,
                descriptions: PersonDescriptions | None = None) -> StepProcessor[PromptInput, PromptResult]:
    descriptions = descriptions or PersonDescriptions()

    async def run(payload: PromptInput, job: Job, signal: AbortSignal) -> PromptResult:
        def reference() -> Image.Image:
            return decode_rgb(store.get_bytes(payload["referenceImageKey"]), "reference image")

        answer = await asyncio.to_thread(write_prompt, settings, vlm, descriptions, payload, reference)
        return {"prompt": answer["prompt"], "negativePrompt": answer["negative_prompt"]}

    return run
