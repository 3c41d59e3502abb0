"""How alike an identity's held-out renders are to its photos: each render's largest face (the one
validation would compare) against every photo embedding through the identity gate's median, and the
median of those over the renders with the LoRA and without it, the number that says whether
training helped. A render without a face has no distance; it counts as one without a face."""

from dataclasses import dataclass
from statistics import median

import numpy as np
from PIL import Image

from ..checks.faces import FaceAnalyzer
from .gate import distance_to_identity


@dataclass(frozen=True)
class Likeness:
    face_found: bool
    distance: float | None  # the median to every photo; None without a face


def likeness(image: Image.Image, faces: FaceAnalyzer, references: list[np.ndarray]) -> Likeness:
    found = faces.faces(image)
    if not found:
        return Likeness(False, None)
    largest = max(found, key=lambda face: face.side)
    return Likeness(True, round(distance_to_identity(largest.embedding, references).median, 6))


def summary(renders: list[tuple[bool, Likeness]]) -> dict:
    """`renders`: (with the LoRA, its likeness) for each render."""
    def of(with_lora: bool) -> list[float]:
        return [l.distance for w, l in renders if w == with_lora and l.distance is not None]

    return {
        "medianDistanceWithLora": round(median(of(True)), 6) if of(True) else None,
        "medianDistanceWithoutLora": round(median(of(False)), 6) if of(False) else None,
        "rendersWithFace": {"withLora": len(of(True)), "withoutLora": len(of(False))},
    }
