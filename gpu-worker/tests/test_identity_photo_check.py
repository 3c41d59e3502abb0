"""check_identity_photos through a real queue, Redis and MinIO: the verdict POST /identities waits
for, one per photo in order, by the rules prepare_identity trains on (one face of adequate size),
with a readable reason for each refusal; a photo that is not an image is refused, not a failure."""

import pytest
from PIL import Image, ImageOps
from skimage import data

from apex_gpu_worker.checks.faces import FaceAnalyzer
from apex_gpu_worker.step_worker import start_step_worker
from apex_gpu_worker.steps.check_identity_photos import check_identity_photos_step
from support.queue_runs import run_step
from test_identity_photos import small_face, two_people
from test_identity_steps import IDENTITY, png

PREFIX = f"identities/{IDENTITY}/photos"


@pytest.fixture
async def check_worker(settings, store):
    worker = start_step_worker("check_identity_photos", check_identity_photos_step(settings, store, FaceAnalyzer()), settings)
    yield worker
    await worker.close()


def put(store, index: int, body: bytes) -> str:
    key = f"{PREFIX}/{index}.jpg"
    store.put_bytes(key, body, "image/jpeg")
    return key


async def test_each_photo_gets_its_verdict_in_order(settings, store, check_worker):
    astronaut = Image.fromarray(data.astronaut())
    photos = [astronaut, Image.fromarray(data.coffee()), two_people(), small_face(), ImageOps.mirror(astronaut)]
    keys = [put(store, i, png(p, "JPEG")) for i, p in enumerate(photos)] + [put(store, 5, b"not an image at all")]
    job, state = await run_step(settings, "check_identity_photos", {"identityId": IDENTITY, "photoKeys": keys})
    assert state == "completed", job.failedReason
    verdicts = job.returnvalue["photos"]
    assert [v["accepted"] for v in verdicts] == [True, False, False, False, True, False]
    assert [v.get("reason") for v in verdicts] == [
        None,
        "no face found",
        "2 faces found: one person per photo",
        verdicts[3]["reason"],
        None,
        "it is not a readable image",
    ]
    assert verdicts[3]["reason"].startswith("the face is too small")
    left, top, right, bottom = verdicts[0]["faceBox"]
    assert 0 <= left < right <= astronaut.width and 0 <= top < bottom <= astronaut.height
    assert "faceBox" not in verdicts[1]
