"""The portrait vocabulary, from contracts/portrait-vocabulary.json (generated from the TypeScript
contract), so both languages word a parameter the same way."""

import json
from functools import cache
from pathlib import Path

from .payloads import Parameters

FIELDS = ("purpose", "attire", "background", "vibe", "lighting")


@cache
def _vocabulary(contracts_dir: Path) -> dict:
    return json.loads((contracts_dir / "portrait-vocabulary.json").read_text())


def phrases(contracts_dir: Path, parameters: Parameters) -> dict[str, str]:
    """The phrase for each chosen value, e.g. {"attire": "a tailored dark suit ..."}."""
    fields = _vocabulary(contracts_dir)["fields"]
    return {field: fields[field][parameters[field]] for field in FIELDS}
