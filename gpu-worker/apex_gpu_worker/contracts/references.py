"""A portrait step's reference photos, read the same way by every step that uses them."""

from .payloads import GenerateInput, ValidateInput


def reference_keys(payload: GenerateInput | ValidateInput) -> list[str]:
    """Every reference photo's key, the first first: `referenceImageKeys`, or for a step queued before
    several photos (and a plain generation: none) `referenceImageKey` alone."""
    if payload.get("referenceImageKeys"):
        return list(payload["referenceImageKeys"])
    return [payload["referenceImageKey"]] if "referenceImageKey" in payload else []
