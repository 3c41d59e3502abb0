"""The person's photo prepared for an image-editing model: the output's aspect and native size,
cropped so the face stays whole and where a portrait frames it. The API already stored it upright
(EXIF orientation applied), so nothing is rotated here."""

from PIL import Image

Box = tuple[int, int, int, int]  # left, top, right, bottom


def reference_crop(size: tuple[int, int], width: int, height: int, face: Box | None) -> Box:
    """The largest box of a photo of `size` with the aspect width:height, centred on the face (its
    centre at 40% of the box's height, as in a head-and-shoulders portrait) or on the photo when no
    face was found, kept inside the photo."""
    photo_w, photo_h = size
    aspect = width / height
    crop_w, crop_h = (photo_w, min(photo_h, round(photo_w / aspect))) if photo_w / photo_h <= aspect else (min(photo_w, round(photo_h * aspect)), photo_h)
    centre_x, centre_y = ((face[0] + face[2]) / 2, (face[1] + face[3]) / 2) if face else (photo_w / 2, photo_h / 2)
    left = round(min(max(centre_x - crop_w / 2, 0), photo_w - crop_w))
    top = round(min(max(centre_y - crop_h * 0.4, 0), photo_h - crop_h))
    return left, top, left + crop_w, top + crop_h


def prepare_reference(photo: Image.Image, width: int, height: int, face: Box | None) -> Image.Image:
    """The photo cropped by reference_crop and resized to width x height, the size the model renders."""
    return photo.crop(reference_crop(photo.size, width, height, face)).resize((width, height), Image.Resampling.LANCZOS)
