"""Cheap statistics that catch a blank or a pure-noise image before anyone looks at it."""

import numpy as np
from PIL import Image


def grey_stddev(image: Image.Image) -> float:
    """Spread of grey levels (0-255): a blank or flat image is near 0."""
    return float(np.asarray(image.convert("L"), dtype=np.float32).std())


def high_frequency_ratio(image: Image.Image) -> float:
    """Share of the image's variation that is pixel-to-pixel: natural photos are smooth (well below
    0.5 at their own scale); independent per-pixel noise is near 1."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    detail = np.abs(np.diff(grey, axis=1)).mean() + np.abs(np.diff(grey, axis=0)).mean()
    # For uncorrelated pixels the mean absolute neighbour difference is about 2/sqrt(pi) * stddev per axis.
    expected_for_noise = 2 * (2 / np.sqrt(np.pi)) * grey.std()
    return float(detail / expected_for_noise) if expected_for_noise > 0 else 0.0
