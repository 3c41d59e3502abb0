"""Reads contracts/: every file the TypeScript side exports for this worker is read here, once per
process and directory (the directory is settings.contracts_dir)."""

import json
from functools import cache
from pathlib import Path
from typing import Any


class ContractsMissing(RuntimeError):
    """A file of contracts/ is not there: the worker cannot know what it would say."""


@cache
def read_contract(contracts_dir: Path, name: str) -> Any:
    """The parsed JSON of `contracts_dir/name`. Callers keep what they build from it, or ask again
    (it is cached): nothing of it changes while the process runs."""
    path = contracts_dir / name
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ContractsMissing(f"{path} is missing: `npm run contracts` writes it") from None
