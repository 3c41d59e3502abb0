"""Decoding untrusted image bytes and encoding results with their generation metadata."""

import io
import json

from PIL import Image, PngImagePlugin

from .contracts.step_errors import UnreadableImage

MAX_DECODE_PIXELS = 64_000_000

CONTENT_TYPES = {"png": "image/png", "webp": "image/webp"}


def decode_rgb(data: bytes, what: str) -> Image.Image:
    """An RGB image from stored bytes; an unreadable one is a permanent failure naming what it was."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_DECODE_PIXELS:
                raise UnreadableImage(f"{what} is too large to decode ({image.width}x{image.height})")
            image.load()
            return image.convert("RGB")
    except UnreadableImage:
        raise
    except Exception as err:
        raise UnreadableImage(f"{what} is not a readable image: {err}") from err


def encode(image: Image.Image, fmt: str, metadata: dict) -> bytes:
    """PNG with a tEXt chunk, or lossless WebP with XMP; both carry the generation metadata as JSON."""
    text = json.dumps(metadata, sort_keys=True)
    out = io.BytesIO()
    if fmt == "png":
        info = PngImagePlugin.PngInfo()
        info.add_text("apex:generation", text)
        image.save(out, format="PNG", pnginfo=info)
    else:
        xmp = f'<x:xmpmeta xmlns:x="adobe:ns:meta/"><apex:generation>{text}</apex:generation></x:xmpmeta>'
        image.save(out, format="WEBP", lossless=True, xmp=xmp.encode())
    return out.getvalue()
