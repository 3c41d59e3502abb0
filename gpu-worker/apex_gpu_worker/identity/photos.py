"""An identity's photos as training needs them: each one upright, with exactly one face of adequate
size (the validator's detector, score and size rules, so a photo training accepts is one the gate
can compare against), framed around that face as a head-and-shoulders square at the training
resolution, and the face's embedding kept for the identity gate."""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from ..checks.faces import Face, FaceAnalyzer

Box = tuple[int, int, int, int]  # left, top, right, bottom

# The face's side is this share of the square's side: a head-and-shoulders framing, as portrait
# trainers crop their subjects, with room for hair and shoulders.
FACE_SHARE = 0.4


@dataclass(frozen=True)
class PhotoRefused:
    reason: str


@dataclass(frozen=True)
class PreparedPhoto:
    image: Image.Image  # resolution x resolution
    face: Box  # in the upright original
    embedding: np.ndarray


def headshot_square(size: tuple[int, int], face: Box) -> Box:
    """The square around `face` in which the face's side is FACE_SHARE of the square (smaller when
    the photo is smaller), its centre at 40% of the height as in a portrait, kept inside the photo."""
    width, height = size
    face_side = max(face[2] - face[0], face[3] - face[1])
    side = min(width, height, round(face_side / FACE_SHARE))
    centre_x, centre_y = (face[0] + face[2]) / 2, (face[1] + face[3]) / 2
    left = round(min(max(centre_x - side / 2, 0), width - side))
    top = round(min(max(centre_y - side * 0.4, 0), height - side))
    return left, top, left + side, top + side


def one_adequate_face(faces: list[Face], size: tuple[int, int], min_side_ratio: float) -> Face | PhotoRefused:
    if not faces:
        return PhotoRefused("no face found")
    if len(faces) > 1:
        return PhotoRefused(f"{len(faces)} faces found: one person per photo")
    ratio = faces[0].side / min(size)
    if ratio < min_side_ratio:
        return PhotoRefused(f"the face is too small: its side is {ratio:.2f} of the photo's short side, at least {min_side_ratio:.2f} is needed")
    return faces[0]


def adequate_face(photo: Image.Image, analyzer: FaceAnalyzer, min_side_ratio: float) -> tuple[Image.Image, Face | PhotoRefused]:
    """The photo turned upright, and its one adequate face or why it has none: the rule both the
    photo check (before anything is kept) and prepare_identity (before training) apply."""
    upright = ImageOps.exif_transpose(photo).convert("RGB")
    return upright, one_adequate_face(analyzer.faces(upright), upright.size, min_side_ratio)


def prepare_photo(photo: Image.Image, analyzer: FaceAnalyzer, resolution: int, min_side_ratio: float) -> PreparedPhoto | PhotoRefused:
    upright, face = adequate_face(photo, analyzer, min_side_ratio)
    if isinstance(face, PhotoRefused):
        return face
    framed = upright.crop(headshot_square(upright.size, face.box)).resize((resolution, resolution), Image.Resampling.LANCZOS)
    return PreparedPhoto(framed, face.box, face.embedding)
