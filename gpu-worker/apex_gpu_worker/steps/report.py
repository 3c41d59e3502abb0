"""Step `report`: once every attempt failed validation, a structured failure analysis. The counts
are computed here; the VLM writes the summary and the suggestions from them and the images."""

import asyncio
import json
from collections import Counter

from bullmq import AbortSignal, Job

from ..contracts.payloads import Attempt, FailedCheck, ReportInput, ReportResult
from ..images import decode_rgb
from ..object_store import ObjectStore
from ..step_worker import StepProcessor
from ..vlm.answers import REPORT_ANSWER
from ..vlm.backend import VlmBackend, ask_json
from ..vlm.templates import render

MAX_IMAGES = 3  # the last image of the most recent attempts is enough to see a pattern


def failed_check_counts(attempts: list[Attempt]) -> list[FailedCheck]:
    counts = Counter(c["name"] for a in attempts for c in a["verdict"]["checks"] if not c["passed"])
    return [{"name": name, "count": count} for name, count in counts.most_common()]


def _attempt_lines(attempts: list[Attempt]) -> str:
    lines = []
    for a in attempts:
        failed = ", ".join(f"{c['name']}={c['value']}" for c in a["verdict"]["checks"] if not c["passed"]) or "none"
        lines.append(f"- attempt {a['attempt']}: prompt \"{a['prompt'][:300]}\"; failed: {failed}; "
                     f"feedback: \"{a['verdict']['feedback'][:300]}\"")
    return "\n".join(lines)


def report_step(store: ObjectStore, vlm: VlmBackend) -> StepProcessor[ReportInput, ReportResult]:
    async def run(payload: ReportInput, job: Job, signal: AbortSignal) -> ReportResult:
        attempts = payload["attempts"]
        keys = [a["imageKeys"][-1] for a in attempts if a["imageKeys"]][-MAX_IMAGES:]
        images = [decode_rgb(await asyncio.to_thread(store.get_bytes, key), "generated image") for key in keys]
        instruction = render("report", parameters=json.dumps(payload["parameters"]), attempts=_attempt_lines(attempts))
        answer = await asyncio.to_thread(ask_json, vlm, images, instruction, REPORT_ANSWER)
        return {"summary": answer["summary"], "failedChecks": failed_check_counts(attempts), "suggestions": answer["suggestions"]}

    return run
