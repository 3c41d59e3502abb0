"""The JSON the VLM answers an identity photo's caption question with: one field per thing that is
not the person's identity, so the answer has no field to put the face in."""

from .answers import _object, _text

CAPTION_ASPECTS = ("clothing", "setting", "lighting", "framing", "expression")
CAPTION_ANSWER = _object({"clothing": _text(100), "setting": _text(100), "lighting": _text(80), "framing": _text(60), "expression": _text(60)})
