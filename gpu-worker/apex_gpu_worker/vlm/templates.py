"""Prompt templates live in vlm/templates/*.txt; `$name` placeholders are filled per request."""

from functools import cache
from pathlib import Path
from string import Template

_DIR = Path(__file__).parent / "templates"


@cache
def _template(name: str) -> Template:
    return Template((_DIR / f"{name}.txt").read_text())


def render(name: str, **values: object) -> str:
    return _template(name).substitute({key: str(value) for key, value in values.items()})
