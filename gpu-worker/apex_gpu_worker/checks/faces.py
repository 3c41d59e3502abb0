"""Face detection and identity distance, offline: dlib's HOG detector (built into dlib) and its
128-d ResNet embedding with the 5-point aligner, whose weights ship in the `face-recognition-models`
wheel (public domain / CC0; the package's 68-point model is non-commercial and is not used)."""

from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

# Located, not imported: the package's __init__ needs pkg_resources, which current setuptools dropped.
_MODELS = Path(find_spec("face_recognition_models").submodule_search_locations[0]) / "models"


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom
    score: float
    embedding: np.ndarray

    @property
    def side(self) -> int:
        left, top, right, bottom = self.box
        return min(right - left, bottom - top)


class FaceAnalyzer:
    def __init__(self, min_score: float = 0.5) -> None:
        self._min_score = min_score
        self._detector = dlib.get_frontal_face_detector()
        self._aligner = dlib.shape_predictor(str(_MODELS / "shape_predictor_5_face_landmarks.dat"))
        self._embedder = dlib.face_recognition_model_v1(str(_MODELS / "dlib_face_recognition_resnet_model_v1.dat"))

    def faces(self, image: Image.Image) -> list[Face]:
        pixels = np.asarray(image.convert("RGB"))
        # Upsample small images once so faces down to ~40 px are found.
        upsample = 1 if min(image.size) < 1200 else 0
        found = []
        rects, scores, _ = self._detector.run(pixels, upsample, 0.0)
        for rect, score in zip(rects, scores):
            if score < self._min_score:  # the upsampled pass also reports weak, face-like texture
                continue
            shape = self._aligner(pixels, rect)
            embedding = np.array(self._embedder.compute_face_descriptor(pixels, shape))
            found.append(Face((rect.left(), rect.top(), rect.right(), rect.bottom()), float(score), embedding))
        return found


def largest_face_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """Where the largest face is, from the detector alone (no embedding): cheap enough for the
    diffusion role, which frames the reference photo around it."""
    global _detector
    if _detector is None:
        _detector = dlib.get_frontal_face_detector()
    rects = _detector(np.asarray(image.convert("RGB")), 1 if min(image.size) < 1200 else 0)
    if not rects:
        return None
    rect = max(rects, key=lambda r: r.width() * r.height())
    return rect.left(), rect.top(), rect.right(), rect.bottom()


_detector = None


def identity_distance(a: Face, b: Face) -> float:
    """Euclidean distance between embeddings: dlib's model separates people at about 0.6."""
    return float(np.linalg.norm(a.embedding - b.embedding))
