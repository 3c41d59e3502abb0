"""An identity's photos prepared for training (one adequate face each, framed as a headshot square,
embedded), and the identity gate's statistic over several reference embeddings."""

import numpy as np
import pytest
from PIL import Image, ImageOps
from skimage import data

from apex_gpu_worker.checks.faces import FaceAnalyzer
from apex_gpu_worker.identity.gate import distance_to_identity
from apex_gpu_worker.identity.photos import PhotoRefused, PreparedPhoto, headshot_square, prepare_photo

MIN_SIDE_RATIO = 0.12  # the validator's default (settings.face_min_side_ratio)


@pytest.fixture(scope="module")
def analyzer():
    return FaceAnalyzer()


def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def with_orientation(photo: Image.Image, orientation: int) -> Image.Image:
    """A photo as a phone stores it: pixels turned, an EXIF tag saying how to turn them back."""
    import io

    turned = photo.transpose(Image.Transpose.ROTATE_90)  # orientation 6: turn 90° clockwise to show it
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    turned.save(buffer, "JPEG", exif=exif)
    return Image.open(io.BytesIO(buffer.getvalue()))


def two_people() -> Image.Image:
    a = astronaut()
    both = Image.new("RGB", (a.width * 2, a.height))
    both.paste(a, (0, 0))
    both.paste(ImageOps.mirror(a), (a.width, 0))
    return both


def small_face() -> Image.Image:
    """The astronaut's 90-px face on a 1000-px photo: found, but 0.09 of the short side."""
    canvas = Image.new("RGB", (1000, 1000), (128, 128, 128))
    canvas.paste(astronaut(), (300, 300))
    return canvas


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: Image.fromarray(data.coffee()), "no face found"),
        (lambda: Image.new("RGB", (512, 512), (200, 180, 160)), "no face found"),
        (two_people, "2 faces found: one person per photo"),
        (small_face, "the face is too small"),
    ],
)
def test_a_photo_without_exactly_one_adequate_face_is_refused_with_its_reason(analyzer, make, reason):
    result = prepare_photo(make(), analyzer, 256, MIN_SIDE_RATIO)
    assert isinstance(result, PhotoRefused) and result.reason.startswith(reason)


@pytest.mark.parametrize(
    "make",
    [astronaut, lambda: astronaut().resize((300, 300)), lambda: with_orientation(astronaut(), 6), lambda: astronaut().convert("L")],
)
def test_a_photo_with_one_adequate_face_is_framed_around_it_at_the_training_resolution(analyzer, make):
    result = prepare_photo(make(), analyzer, 256, MIN_SIDE_RATIO)
    assert isinstance(result, PreparedPhoto)
    assert result.image.size == (256, 256) and result.embedding.shape == (128,)
    again = analyzer.faces(result.image)  # the framed photo still shows the same person's face, upright
    assert len(again) == 1 and np.linalg.norm(again[0].embedding - result.embedding) < 0.6
    assert 0.3 < again[0].side / 256 < 0.55  # framed around the face (FACE_SHARE 0.4), not the whole photo shrunk (~0.18)


@pytest.mark.parametrize(
    "size, face, square",
    [
        ((1000, 1000), (450, 450, 550, 550), (375, 400, 625, 650)),  # face side 100 -> square 250, face centre at 40 %
        ((1000, 1000), (0, 0, 100, 100), (0, 0, 250, 250)),  # kept inside the photo
        ((300, 200), (100, 50, 250, 200), (75, 0, 275, 200)),  # the photo's short side caps it
    ],
)
def test_the_headshot_square_keeps_the_face_at_a_fixed_share(size, face, square):
    assert headshot_square(size, face) == square


def at(x: float) -> np.ndarray:
    v = np.zeros(128)
    v[0] = x
    return v


@pytest.mark.parametrize(
    "references, median",
    [
        ([at(0.3)], 0.3),  # one photo: its distance, as the single-photo gate
        ([at(0.3), at(0.4), at(0.5)], 0.4),
        ([at(0.3), at(0.35), at(0.4), at(1.5)], 0.375),  # one odd photo does not reject a good likeness
        ([at(0.05), at(0.9), at(0.95)], 0.9),  # one photo a look-alike matches does not let it through
    ],
)
def test_the_gate_reads_the_median_distance_to_every_photo(references, median):
    result = distance_to_identity(at(0.0), references)
    assert result.median == pytest.approx(median)
    assert result.each == pytest.approx([float(r[0]) for r in references])


def test_an_identity_without_photos_has_no_distance():
    with pytest.raises(ValueError):
        distance_to_identity(at(0.0), [])
