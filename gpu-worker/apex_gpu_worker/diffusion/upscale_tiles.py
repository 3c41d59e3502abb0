"""Super-resolution in tiles, so memory stays bounded whatever the image size. Each tile runs with
`overlap` pixels of its neighbours around it as context and only its own part of the output is kept:
the convolutions near a tile's edge see the same neighbourhood as in one pass (up to the overlap), so
no seams show where tiles meet."""

import math
from collections.abc import Callable

import torch

# A model call: (1, C, h, w) in [0, 1] -> (1, C, h * scale, w * scale).
ModelCall = Callable[[torch.Tensor], torch.Tensor]


def tile_spans(length: int, tile: int, align: int = 1) -> list[tuple[int, int]]:
    """[start, end) spans of about equal size, at most `tile` (unless `align` asks for more), starting
    at multiples of `align`, covering 0..length."""
    count = math.ceil(length / tile)
    size = math.ceil(math.ceil(length / count) / align) * align
    return [(start, min(start + size, length)) for start in range(0, length, size)]


def upscale_in_tiles(call: ModelCall, image: torch.Tensor, scale: int, tile: int, overlap: int, align: int = 1,
                     before_tile: Callable[[], None] = lambda: None) -> torch.Tensor:
    """`image` (1, C, H, W) upscaled by `scale`, in tiles of at most `tile` pixels a side (0: one
    pass). Tiles and their context start at multiples of `align`: a model that first folds pixel
    blocks into channels (Real-ESRGAN x2) must see the blocks of the one pass. `before_tile` runs
    before each tile: it raises to stop (a cancelled job)."""
    _, _, height, width = image.shape
    overlap = math.ceil(overlap / align) * align
    if tile <= 0 or (height <= tile and width <= tile):
        before_tile()
        return call(image)
    output: torch.Tensor | None = None
    for top, bottom in tile_spans(height, tile, align):
        for left, right in tile_spans(width, tile, align):
            before_tile()
            context_top, context_left = max(top - overlap, 0), max(left - overlap, 0)
            upscaled = call(image[:, :, context_top:min(bottom + overlap, height), context_left:min(right + overlap, width)])
            if output is None:
                output = upscaled.new_empty((1, upscaled.shape[1], height * scale, width * scale))
            output[:, :, top * scale:bottom * scale, left * scale:right * scale] = upscaled[
                :, :, (top - context_top) * scale:(bottom - context_top) * scale, (left - context_left) * scale:(right - context_left) * scale
            ]
    return output
