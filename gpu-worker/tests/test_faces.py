import io

import numpy as np
import pytest
from PIL import Image
from skimage import data

from apex_gpu_worker.checks.faces import Face, FaceAnalyzer, identity_distance
from apex_gpu_worker.checks.image_quality import grey_stddev, high_frequency_ratio
from apex_gpu_worker.settings import WorkerSettings
from apex_gpu_worker.steps.validate import deterministic_checks

ASTRONAUT = Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def faces():
    return FaceAnalyzer()


def by_name(checks):
    return {c["name"]: c for c in checks}


def test_the_astronaut_has_one_face_and_is_identical_to_itself_and_to_a_resized_copy(faces):
    found = faces.faces(ASTRONAUT)
    assert len(found) == 1
    resized = faces.faces(ASTRONAUT.resize((300, 300)))
    assert identity_distance(found[0], found[0]) == 0
    assert identity_distance(found[0], resized[0]) < WorkerSettings().identity_max_distance


def largest(faces, image):
    return max(faces.faces(image), key=lambda f: f.side, default=None)


def test_checks_pass_for_the_reference_itself_and_measure_every_value(faces):
    checks = by_name(deterministic_checks(WorkerSettings(), faces, ASTRONAUT, [largest(faces, ASTRONAUT)], (512, 512)))
    assert all(c["passed"] for c in checks.values()), checks
    assert checks["face_count"]["value"] == 1 and checks["identity_distance"]["value"] == 0
    assert checks["face_size"]["value"] > 0.12
    # The verdict says where the compared faces are, and against which threshold.
    identity = checks["identity_distance"]
    box = list(largest(faces, ASTRONAUT).box)
    assert identity["faceBoxes"] == {"reference": box, "image": box} and identity["threshold"] == 0.6


def test_a_picture_without_a_face_fails_with_a_clear_reason(faces):
    coffee = Image.fromarray(data.coffee())
    checks = by_name(deterministic_checks(WorkerSettings(), faces, coffee, [largest(faces, ASTRONAUT)], (600, 400)))
    assert checks["face_count"] == {"name": "face_count", "passed": False, "value": 0, "detail": "exactly one face must be visible"}
    assert checks["identity_distance"]["passed"] is False and checks["identity_distance"]["detail"] == "no face in the generated image"
    assert checks["identity_distance"]["faceBoxes"]["image"] is None and checks["identity_distance"]["faceBoxes"]["reference"] is not None
    assert checks["dimensions"]["passed"] is True


def at_distance(face: Face, distance: float) -> Face:
    """A reference face whose embedding lies exactly `distance` from `face`'s."""
    direction = np.zeros_like(face.embedding)
    direction[0] = 1.0
    return Face((0, 0, 100, 100), 1.0, face.embedding + distance * direction)


@pytest.mark.parametrize(("distances", "value", "passed"), [
    ([0.3], 0.3, True),  # one photo: its distance, as the gate always was
    ([0.1, 0.5, 0.9], 0.5, True),  # one unlike photo does not reject a likeness
    ([0.1, 0.7, 0.8], 0.7, False),  # one matching photo does not let a look-alike through
    ([0.2, None, 0.4, 0.9], 0.4, True),  # a photo without a face is not counted
])
def test_the_identity_check_reads_the_median_distance_to_every_reference_and_records_each(faces, distances, value, passed):
    portrait = largest(faces, ASTRONAUT)
    references = [None if d is None else at_distance(portrait, d) for d in distances]
    identity = by_name(deterministic_checks(WorkerSettings(), faces, ASTRONAUT, references, (512, 512)))["identity_distance"]
    assert identity["value"] == value and identity["passed"] is passed and identity["threshold"] == 0.6
    assert identity["distances"] == distances
    if len(distances) > 1:
        assert identity["detail"].startswith(f"median embedding distance to {sum(d is not None for d in distances)} reference faces")


def test_blank_and_noise_are_told_apart_from_a_photo():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    settings = WorkerSettings()
    assert grey_stddev(Image.new("RGB", (64, 64), "white")) < settings.blank_min_stddev
    assert high_frequency_ratio(noise) > settings.noise_max_ratio
    assert high_frequency_ratio(ASTRONAUT) < settings.noise_max_ratio and grey_stddev(ASTRONAUT) > settings.blank_min_stddev


def test_a_jobs_reference_face_is_computed_once_however_many_attempts_validate_against_it(store, faces):
    from apex_gpu_worker.steps.validate import ReferenceFaces

    for key, image in (("jobs/a/reference.png", ASTRONAUT), ("jobs/b/reference.png", Image.fromarray(data.coffee()))):
        out = io.BytesIO()
        image.save(out, format="PNG")
        store.put_bytes(key, out.getvalue(), "image/png")
    references = ReferenceFaces(store, faces)
    first = references.largest("jobs/a/reference.png")
    assert [references.largest("jobs/a/reference.png") for _ in range(3)] == [first] * 3
    assert references.computed == 1
    assert references.largest("jobs/b/reference.png") is None  # no face in it: remembered too
    assert references.largest("jobs/b/reference.png") is None and references.computed == 2


def test_several_threads_may_analyse_faces_at_once(faces):
    """Two steps of one process (validate and an identity's photo check, say) call the analyzer from
    their threads together: each gets what it alone would get (unguarded, dlib crashed the process
    or reported dozens of faces)."""
    from concurrent.futures import ThreadPoolExecutor

    photos = [ASTRONAUT, ASTRONAUT.crop((40, 0, 470, 430)), Image.fromarray(data.coffee())] * 4
    alone = [len(faces.faces(p)) for p in photos]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda p: len(faces.faces(p)), photos))
    assert together == alone == [1, 1, 0] * 4
