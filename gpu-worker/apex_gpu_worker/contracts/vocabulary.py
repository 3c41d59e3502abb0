"""The portrait vocabulary, from contracts/portrait-vocabulary.json (generated from the TypeScript
contract), so both languages word a parameter the same way."""

from pathlib import Path

from .loader import read_contract
from .payloads import Parameters


def vocabulary_fields(contracts_dir: Path) -> dict[str, dict[str, str]]:
    """Each worded parameter with the phrase of each of its values."""
    return read_contract(contracts_dir, "portrait-vocabulary.json")["fields"]


def phrases(contracts_dir: Path, parameters: Parameters) -> dict[str, str]:
    """The phrase for each chosen value, e.g. {"attire": "a tailored dark suit ..."}."""
    return {field: words[parameters[field]] for field, words in vocabulary_fields(contracts_dir).items()}
