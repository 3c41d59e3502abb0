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
