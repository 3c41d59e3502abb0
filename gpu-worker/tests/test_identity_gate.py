"""The identity gate of an identity's portrait, through the validate step's real queue: the
portrait's face against every photo embedding prepare_identity kept (known embeddings here), not
against the reference photos' faces."""

import io
import json

import numpy as np
import pytest
from PIL import Image
from skimage import data

from apex_gpu_worker.checks.faces import FaceAnalyzer
from apex_gpu_worker.runtime import WorkerRuntime, build_processors
from support.queue_runs import JOB_ID, PARAMETERS, run_step

IDENTITY = "66b1c2d3e4f5a60718293a4e"
EMBEDDINGS = f"identities/{IDENTITY}/prepared/embeddings.json"
PORTRAIT = f"jobs/{JOB_ID}/attempts/1/0.png"
NO_FACE = f"jobs/{JOB_ID}/reference.0.png"


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def at_distances(face: np.ndarray, distances: list[float]) -> list[np.ndarray]:
    """Embeddings exactly `distances` away from `face`, each in another direction."""
    directions = np.random.default_rng(0).normal(size=(len(distances), face.size))
    return [face + d * v / np.linalg.norm(v) for d, v in zip(distances, directions)]


@pytest.fixture
async def validate_worker(settings, store):
    store.put_bytes(PORTRAIT, png(Image.fromarray(data.astronaut())), "image/png")
    store.put_bytes(NO_FACE, png(Image.fromarray(data.coffee())), "image/png")  # the gate must not read it
    runtime = await WorkerRuntime.start(settings, build_processors(settings, ("validate",)))
    yield runtime
    await runtime.stop()


# (each photo's distance to the portrait's face, the median the gate reads, whether it passes at 0.6)
GATES = {
    "most photos close, one far": ([0.0, 0.3, 0.9], 0.3, True),
    "one close photo among far ones (a look-alike)": ([0.2, 0.7, 0.8], 0.7, False),
    "even count: the middle two's mean": ([0.1, 0.4, 0.5, 0.9], 0.45, True),
    "a single photo": ([0.65], 0.65, False),
}


@pytest.mark.parametrize(("distances", "median", "passes"), GATES.values(), ids=GATES.keys())
async def test_the_gate_reads_the_median_distance_to_every_photo_embedding_of_the_identity(settings, store, validate_worker, distances, median, passes):
    face = max(FaceAnalyzer(settings.face_min_score).faces(Image.fromarray(data.astronaut())), key=lambda f: f.side)
    photos = [{"key": f"identities/{IDENTITY}/prepared/{i}.png", "embedding": e.tolist(), "faceBox": [10, 10, 90, 90]}
              for i, e in enumerate(at_distances(face.embedding, distances))]
    store.put_bytes(EMBEDDINGS, json.dumps({"model": "dlib_face_recognition_resnet_model_v1", "photos": photos}).encode(), "application/json")
    payload = {"jobId": JOB_ID, "attempt": 1, "parameters": PARAMETERS, "referenceImageKey": NO_FACE, "imageKeys": [PORTRAIT],
               "prompt": "a portrait", "expectedWidth": 512, "expectedHeight": 512, "identityEmbeddingsKey": EMBEDDINGS}
    job, state = await run_step(settings, "validate", payload)
    assert state == "completed", job.failedReason
    gate = {c["name"]: c for c in job.returnvalue["checks"]}["identity_distance"]
    assert gate["distances"] == pytest.approx(distances, abs=1e-3)  # one per photo of the identity, in order
    assert gate["value"] == pytest.approx(median, abs=1e-3)
    assert gate["passed"] is passes and gate["threshold"] == 0.6
    assert gate["faceBoxes"]["reference"] == [10, 10, 90, 90]  # the first photo's, as kept


@pytest.mark.parametrize("document", [{"photos": []}, {"photos": [{"key": "k", "embedding": [0.1] * 12, "faceBox": [0, 0, 1, 1]}]}],
                         ids=["no photos", "not a 128-d embedding"])
async def test_embeddings_that_are_not_an_identitys_fail_the_step_permanently(settings, store, validate_worker, document):
    store.put_bytes(EMBEDDINGS, json.dumps(document).encode(), "application/json")
    payload = {"jobId": JOB_ID, "attempt": 1, "parameters": PARAMETERS, "referenceImageKey": NO_FACE, "imageKeys": [PORTRAIT],
               "prompt": "a portrait", "expectedWidth": 512, "expectedHeight": 512, "identityEmbeddingsKey": EMBEDDINGS}
    job, state = await run_step(settings, "validate", payload, {"attempts": 2})
    assert state == "failed" and job.attemptsMade == 1
    assert json.loads(job.failedReason.split("\n", 1)[0])["code"] == "contract_violation"
