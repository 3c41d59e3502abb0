"""The face embeddings prepare_identity keeps for an identity's photos (one JSON object beside
them), read back as the faces the identity gate compares a portrait with."""

import json

import numpy as np

from ..checks.faces import Face
from ..contracts.step_errors import ContractViolation

EMBEDDING_SIZE = 128  # dlib's face embedding


def identity_faces(data: bytes) -> list[Face]:
    """One face per photo, in the photos' order. The detector's score is not kept (prepare_identity
    accepted every face it wrote): NaN says so."""
    photos = json.loads(data)["photos"]
    faces = [Face(tuple(int(v) for v in photo["faceBox"]), float("nan"), np.asarray(photo["embedding"], dtype=np.float64)) for photo in photos]
    if not faces or any(face.embedding.shape != (EMBEDDING_SIZE,) for face in faces):
        raise ContractViolation(f"an identity's embeddings must be one {EMBEDDING_SIZE}-d embedding per photo, at least one")
    return faces
