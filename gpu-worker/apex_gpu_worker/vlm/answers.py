"""The JSON each VLM question must be answered with. Strings are bounded so constrained decoding
always ends, and every object is closed and fully required (OpenAI strict structured output)."""


def _text(max_length: int) -> dict:
    return {"type": "string", "minLength": 1, "maxLength": max_length}


def _object(properties: dict) -> dict:
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


PROMPT_ANSWER = _object({"subject": _text(300), "prompt": _text(700), "negative_prompt": _text(200)})
# A later attempt of the job, given the subject the first one wrote from the photo: no photo, no subject.
PROMPT_REWRITE_ANSWER = _object({"prompt": PROMPT_ANSWER["properties"]["prompt"], "negative_prompt": PROMPT_ANSWER["properties"]["negative_prompt"]})

JUDGED_ASPECTS = ("attire", "background", "vibe", "lighting", "artifacts")
JUDGE_ANSWER = _object(
    {**{aspect: _object({"ok": {"type": "boolean"}, "note": _text(120)}) for aspect in JUDGED_ASPECTS}, "feedback": _text(300)}
)

REPORT_ANSWER = _object(
    {"summary": _text(600), "suggestions": {"type": "array", "items": _text(200), "minItems": 1, "maxItems": 5}}
)


def max_new_tokens(schema: dict, cap: int) -> int:
    """The most tokens an answer under `schema` needs when every token holds at least one character,
    as in English text (SmolVLM's hold about four): the characters of the longest compact JSON the
    schema allows (every string at its maxLength, every array at its maxItems) and the stop token;
    within `cap` (APEX_GPU_VLM_MAX_NEW_TOKENS), which alone bounds a schema without such limits.
    So each question decodes what its answer may need and no answer is cut short of a field."""
    longest = _longest(schema)
    return min(cap, longest + 1) if longest is not None else cap


def _longest(schema: dict) -> int | None:
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        fields = [(name, _longest(value)) for name, value in schema["properties"].items()]
        if any(length is None for _, length in fields):
            return None
        return 1 + sum(len(f'"{name}":') + length + 1 for name, length in fields)  # braces and commas
    if kind == "array" and "maxItems" in schema:
        item = _longest(schema["items"])
        return None if item is None else 1 + schema["maxItems"] * (item + 1)
    if kind == "string" and "maxLength" in schema:
        return schema["maxLength"] + 2
    if kind == "boolean":
        return len("false")
    return None
