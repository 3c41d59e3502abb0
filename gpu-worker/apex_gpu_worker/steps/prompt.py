"""Step `prompt`: the VLM looks at the reference photo and writes, for the model that renders the
portrait, this attempt's prompt: an edit instruction (what to change, what to keep) for an
image-editing model, or a description of the person and the portrait for a text-to-image model. The
previous attempt's validation feedback refines it."""

import asyncio

from bullmq import AbortSignal, Job

from ..contracts.payloads import PromptInput, PromptResult
from ..contracts.vocabulary import phrases
from ..images import decode_rgb
from ..object_store import ObjectStore
from ..settings import WorkerSettings
from ..step_worker import StepProcessor
from ..vlm.answers import PROMPT_ANSWER
from ..vlm.backend import VlmBackend, ask_json
from ..vlm.templates import render


def prompt_step(settings: WorkerSettings, store: ObjectStore, vlm: VlmBackend) -> StepProcessor[PromptInput, PromptResult]:
    async def run(payload: PromptInput, job: Job, signal: AbortSignal) -> PromptResult:
        reference = decode_rgb(await asyncio.to_thread(store.get_bytes, payload["referenceImageKey"]), "reference image")
        previous = payload["previous"]
        template = "prompt_edit" if settings.portrait_model else "prompt"
        instruction = render(
            template,
            **phrases(settings.contracts_dir, payload["parameters"]),
            previous=render(f"{template}_previous", **previous) if previous else "",
        )
        answer = await asyncio.to_thread(ask_json, vlm, [reference], instruction, PROMPT_ANSWER)
        return {"prompt": answer["prompt"], "negativePrompt": answer["negative_prompt"]}

    return run
