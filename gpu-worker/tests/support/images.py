"""Images as the worker reads them from S3: PNG bytes."""

import io

from PIL import Image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
