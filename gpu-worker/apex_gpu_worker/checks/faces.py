"""Face detection and identity distance, offline: dlib's HOG detector (built into dlib) and its
128-d ResNet embedding with the 5-point aligner, whose weights ship in the `face-recognition-models`
wheel (public domain / CC0; the package's 68-point model is non-commercial and is not used)."""

import threading
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import dlib
import numpy as np
from PIL import Image

# Located, not imported: the package's __init__ needs pkg_resources, which current setuptools dropped.
_MODELS = Path(find_spec("face_recognition_models").submodule_search_locations[0]) / "models"

# dlib's detector, aligner and embedder are not safe to call from two threads at once (two steps of
# one process, such as a portrait's validate and an identity's photo check, crashed it or made it
# report dozens of faces): every call into them holds this lock.
_DLIB = threading.Lock()


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
        found = []
        for box, score in detect_faces(self._detector, image, self._min_score):
            with _DLIB:
                shape = self._aligner(pixels, dlib.rectangle(*box))
                embedding = np.array(self._embedder.compute_face_descriptor(pixels, shape))
            found.append(Face(box, score, embedding))
        return found


def detect_faces(detector, image: Image.Image, min_score: float) -> list[tuple[tuple[int, int, int, int], float]]:
    """Face boxes with their detector scores, the way validation sees them: small images upsampled
    once so faces down to ~40 px are found; weak detections (face-like texture, which the upsampled
    pass also reports) dropped."""
    pixels = np.asarray(image.convert("RGB"))
    with _DLIB:
        rects, scores, _ = detector.run(pixels, 1 if min(image.size) < 1200 else 0, 0.0)
    return [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores) if s >= min_score]


def largest_face_box(image: Image.Image, min_score: float = 0.5) -> tuple[int, int, int, int] | None:
    """The face validation would compare (the largest by its shorter side), from the detector alone
    (no embedding): cheap enough for the diffusion role, which frames the reference photo around it."""
    boxes = [box for box, _ in detect_faces(_DETECTOR, image, min_score)]
    return max(boxes, key=lambda b: min(b[2] - b[0], b[3] - b[1]), default=None)


_DETECTOR = dlib.get_frontal_face_detector()  # shared, called under _DLIB like every dlib model


def identity_distance(a: Face, b: Face) -> float:
    """Euclidean distance between embeddings: dlib's model separates people at about 0.6."""
    return float(np.linalg.norm(a.embedding - b.embedding))
