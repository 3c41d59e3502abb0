"""The step catalogue, contracts/steps.json (exported from src/flows/steps/registry.ts): which queue
carries which GPU step, in which pool (the worker's `--role`: which models a process loads), under
which contract. Every step has a queue named after it; a workflow whose use of a step needs a pool of
its own has another (a portrait's generate renders with the image-editing model, apart from
text-to-image generations, so each scales on its own backlog)."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from .loader import read_contract
from .payloads import StepName

ContractKind = Literal["input", "result"]
ALL_POOLS = "all"  # the role that serves every queue


@dataclass(frozen=True)
class GpuQueue:
    name: str
    step: StepName
    pool: str
    workflow: str | None  # the workflow the queue is reserved for; None: the step's own queue
    contract: dict[ContractKind, str]  # the schema file of its payloads and of its results


class StepCatalogue:
    def __init__(self, entries: dict[str, dict]):
        self.queues = {name: GpuQueue(name, e["step"], e["pool"], e.get("workflow"), e["contract"]) for name, e in entries.items()}

    def step_of(self, queue: str) -> StepName:
        """The step (and so the contract) a queue's jobs carry."""
        return self.queues[queue].step

    def queue_for(self, step: StepName, workflow: str) -> str:
        """Where `workflow` queues `step`: the workflow's own queue for it, else the step's."""
        return next((q.name for q in self.queues.values() if q.step == step and q.workflow == workflow), step)

    def contract_file(self, step: str, kind: ContractKind) -> str | None:
        """The schema file of a step's payloads or results; None for a step no queue carries."""
        return next((q.contract[kind] for q in self.queues.values() if q.step == step), None)

    @property
    def roles(self) -> dict[str, tuple[str, ...]]:
        """The queues each `--role` serves: one role per pool, and one for them all."""
        roles: dict[str, tuple[str, ...]] = {}
        for queue in self.queues.values():
            roles[queue.pool] = (*roles.get(queue.pool, ()), queue.name)
        return {**roles, ALL_POOLS: tuple(self.queues)}


@cache
def step_catalogue(contracts_dir: Path) -> StepCatalogue:
    return StepCatalogue(read_contract(contracts_dir, "steps.json"))
