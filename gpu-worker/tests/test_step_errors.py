import json

import pytest
from bullmq import UnrecoverableError

from apex_gpu_worker.contracts.loader import read_contract
from apex_gpu_worker.contracts.step_errors import LoraUnusable, step_error_classes
from apex_gpu_worker.settings import WorkerSettings
from test_step_worker import VALID, run_one

CONTRACTS = WorkerSettings().contracts_dir


def test_every_listed_code_has_one_error_class_and_every_class_a_listed_code():
    listed = read_contract(CONTRACTS, "step-errors.json")["codes"]
    assert sorted(step_error_classes()) == sorted(listed)


def test_the_typed_errors_of_the_steps_are_coded():
    from apex_gpu_worker.contracts.validation import ContractViolation
    from apex_gpu_worker.diffusion.engine import GenerationCancelled
    from apex_gpu_worker.diffusion.loras import LoraUnusable as FromLoras
    from apex_gpu_worker.vlm.backend import UnparseableAnswer

    codes = {cls: cls.code for cls in (ContractViolation, FromLoras, UnparseableAnswer, GenerationCancelled)}
    assert codes == {ContractViolation: "contract_violation", FromLoras: "lora_unusable", UnparseableAnswer: "unparseable_answer", GenerationCancelled: "step_cancelled"}


@pytest.mark.parametrize("code", sorted(step_error_classes()))
async def test_a_coded_failure_puts_its_code_and_params_first_in_the_failed_reason(settings, code):
    async def failing(payload, job, signal):
        cls = step_error_classes()[code]
        raise cls("internal detail /srv/models", repo="owner/face") if cls is LoraUnusable else cls("internal detail /srv/models")

    job, state, _ = await run_one(settings, failing, VALID)
    head, detail = job.failedReason.split("\n", 1)
    assert state == "failed" and job.attemptsMade == 1  # coded failures are permanent
    assert json.loads(head) == {"code": code, "params": {"repo": "owner/face"} if code == "lora_unusable" else {}}
    assert detail == "internal detail /srv/models"


async def test_an_uncoded_failure_keeps_its_own_reason(settings):
    async def failing(payload, job, signal):
        raise UnrecoverableError("plain permanent failure")

    job, state, _ = await run_one(settings, failing, VALID)
    assert (state, job.failedReason) == ("failed", "plain permanent failure")
