"""Writes apex_gpu_worker/contracts/payloads.py, the typed view of every step payload, from the JSON
Schemas in contracts/ (themselves generated from the zod contracts by `npm run contracts`):

    python -m dev_support.generate_payloads        # in gpu-worker/, after `npm run contracts`

One TypedDict per `<step>.input` / `<step>.result` schema, one per nested object (named after its
`title` where the schema gives one, else after its property; shared where two are the same) and a
Literal alias per enum. Only what a type can say is
carried over; ranges, patterns and closed objects stay the schemas' business (contracts/validation.py
checks them at run time). A schema construct it does not know is an error, never a silent `Any`.
"""

import json
import re
import sys
from pathlib import Path

GPU_WORKER = Path(__file__).resolve().parents[1]
CONTRACTS_DIR = GPU_WORKER.parent / "contracts"
TARGET = GPU_WORKER / "apex_gpu_worker" / "contracts" / "payloads.py"
PAYLOAD_SCHEMA = re.compile(r"^(?P<step>[a-z][a-z_]*)\.(?P<kind>input|result)\.schema\.json$")
SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}
MAX_LINE = 110

HEADER = '''"""Typed step payloads, GENERATED from contracts/*.schema.json by dev_support/generate_payloads.py:
do not edit. Run `python -m dev_support.generate_payloads` in gpu-worker/ after `npm run contracts`
(tests/test_payloads.py fails while this file is stale).

The types name the fields; the constraints (ranges, patterns, no unknown fields) are the schemas',
checked at run time by contracts/validation.py before a step sees its payload.
"""

from typing import Literal, NotRequired, TypedDict'''


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else f"{name}Item"


def _literal(values: list) -> str:
    one_line = f"Literal[{', '.join(json.dumps(v) for v in values)}]"
    if len(one_line) <= MAX_LINE - 20:
        return one_line
    return "Literal[\n" + "".join(f"    {json.dumps(v)},\n" for v in values) + "]"


class _Module:
    """The definitions emitted so far, in dependency order, each name bound to one body."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.bodies: dict[str, str] = {}

    def define(self, name: str, parent: str, body: str, shared: bool = True) -> str:
        """The name of a definition with this body: an existing one when shared, else a new one
        under `name` (prefixed with its parent's name where `name` already means something else)."""
        if shared:
            for existing, known in self.bodies.items():
                if known == body:
                    return existing
            if name in self.bodies:
                name = f"{parent}{name}"
        if name in self.bodies:
            raise ValueError(f"two different definitions want the name {name}")
        self.bodies[name] = body
        self.blocks.append(f"{name} = {body}" if body.startswith("Literal[") else f"class {name}(TypedDict):\n{body}")
        return name


def _type(module: _Module, schema: dict, name: str, parent: str) -> str:
    """The Python type of a schema; nested objects and enums become named definitions."""
    if "anyOf" in schema:
        return " | ".join(_type(module, option, name, parent) for option in schema["anyOf"])
    if "enum" in schema:
        return module.define(_pascal(name), parent, _literal(schema["enum"]))
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(SCALARS[k] for k in kind)
    if kind in SCALARS:
        return SCALARS[kind]
    if kind == "array":
        return f"list[{_type(module, schema['items'], _singular(name), parent)}]"
    if kind == "object" and "properties" in schema:
        type_name = schema.get("title") or _pascal(name)
        return module.define(type_name, parent, _fields(module, schema, type_name))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"dict[str, {_type(module, schema['additionalProperties'], name, parent)}]"
    raise ValueError(f"{parent}.{name}: no Python type for schema {json.dumps(schema)[:200]}")


def _fields(module: _Module, schema: dict, owner: str) -> str:
    """A TypedDict's body: one annotated line per property, NotRequired where the schema allows it."""
    required = set(schema.get("required", ()))
    lines = []
    for field, field_schema in schema["properties"].items():
        if not field.isidentifier():
            raise ValueError(f"{owner}.{field}: not a Python identifier")
        annotation = _type(module, field_schema, field, owner)
        lines.append(f"    {field}: {annotation if field in required else f'NotRequired[{annotation}]'}")
    return "\n".join(lines)


def render(contracts_dir: Path = CONTRACTS_DIR) -> str:
    """The text of contracts/payloads.py for the schemas in contracts_dir."""
    module = _Module()
    steps: list[str] = []
    for path in sorted(contracts_dir.glob("*.schema.json")):
        match = PAYLOAD_SCHEMA.match(path.name)
        if not match:
            continue
        step, kind = match["step"], match["kind"]
        if step not in steps:
            steps.append(step)
        name = f"{_pascal(step)}{_pascal(kind)}"
        # A step's own payload types are always classes of their own, even where another has the same fields.
        module.define(name, "", _fields(module, json.loads(path.read_text()), name), shared=False)
    missing = [f"{s}.{k}.schema.json" for s in steps for k in ("input", "result")
               if not (contracts_dir / f"{s}.{k}.schema.json").exists()]
    if missing:
        raise ValueError(f"step contracts without their counterpart: {', '.join(missing)}")
    names = ", ".join(json.dumps(s) for s in steps)
    steps_block = (
        "# The GPU steps with contracts (<step>.input/result); which queues carry them: contracts/steps.json.\n"
        f"StepName = {_literal(steps)}\n"
        f"STEP_NAMES: tuple[StepName, ...] = ({names}{',' if len(steps) == 1 else ''})"
    )
    return "\n\n\n".join([HEADER, steps_block, *module.blocks]) + "\n"


def main() -> None:
    contracts_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else CONTRACTS_DIR
    TARGET.write_text(render(contracts_dir))
    print(f"wrote {TARGET.relative_to(GPU_WORKER)}")


if __name__ == "__main__":
    main()
