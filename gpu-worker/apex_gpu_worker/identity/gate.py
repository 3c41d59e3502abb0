"""The identity gate against every photo of a person: a portrait's face is compared with each of the
identity's photo embeddings, and the gate reads their median distance. The median, because one
photo of the set may be unlike the rest (other light, glasses, a younger face): the minimum would
let a look-alike through on the one photo it happens to match, the mean would let one odd photo
reject a good likeness; the median follows most of the photos and ignores one outlier either way.
With a single photo it is that photo's distance, the gate as it was."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IdentityDistance:
    median: float
    each: list[float]  # to every reference photo, in their order


def distance_to_identity(face: np.ndarray, references: list[np.ndarray]) -> IdentityDistance:
    if not references:
        raise ValueError("an identity has at least one photo embedding")
    each = [float(np.linalg.norm(face - reference)) for reference in references]
    return IdentityDistance(float(np.median(each)), each)
