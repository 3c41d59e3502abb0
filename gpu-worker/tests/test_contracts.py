import pytest

from apex_gpu_worker.contracts.validation import ContractViolation, check_input, check_result
from apex_gpu_worker.settings import WorkerSettings

CONTRACTS = WorkerSettings().contracts_dir

GENERATE = {
    "jobId": "65a1b2c3d4e5f60718293a4b",
    "attempt": 1,
    "prompt": "a portrait",
    "seed": 7,
    "width": 816,
    "height": 1024,
    "numImages": 1,
    "loras": [],
    "outputPrefix": "jobs/65a1b2c3d4e5f60718293a4b/attempts/1",
}


def test_a_payload_that_honours_the_contract_passes():
    assert check_input(CONTRACTS, "generate", GENERATE) is GENERATE


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"width": 817}, "width"),
        ({"numImages": 5}, "numImages"),
        ({"jobId": "not-hex"}, "jobId"),
        ({"loras": [{"repo": "no-slash", "scale": 1}]}, "loras.0.repo"),
        ({"surprise": True}, "(root)"),
    ],
)
def test_an_invalid_payload_is_a_permanent_failure_naming_the_field(change, field):
    with pytest.raises(ContractViolation, match=rf"invalid generate input: {__import__('re').escape(field)}"):
        check_input(CONTRACTS, "generate", {**GENERATE, **change})


def test_a_result_missing_a_required_field_is_rejected_before_it_leaves_the_worker():
    with pytest.raises(ContractViolation, match="invalid validate result"):
        check_result(CONTRACTS, "validate", {"passed": True, "score": 0.9, "checks": []})
