"""Which queue carries which GPU step, from contracts/gpu-queues.json (written from
src/flows/queues.ts GPU_QUEUES): a portrait's generate step has a queue of its own, so the pool
with the image-editing model scales on its own backlog, apart from text-to-image generations."""

import json

from .payloads import StepName
from .settings import REPO_ROOT

QUEUE_STEPS: dict[str, StepName] = json.loads((REPO_ROOT / "contracts" / "gpu-queues.json").read_text())
PORTRAIT_GENERATE = "portrait-generate"
