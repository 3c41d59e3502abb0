"""The identity steps through real queues, Redis and MinIO with the tiny models: prepare_identity
refuses a photo set naming the photo it cannot use, and frames, captions and embeds one it can;
train_identity trains to the end and leaves a LoRA diffusers loads, resumes from its S3 checkpoint
after its worker process is SIGKILLed, and stops within a step when cancelled; evaluate_identity
renders each held-out portrait without and with the LoRA (same seed), takes the LoRA out again, and
measures each render's face against the identity's photos."""

import asyncio
import io
import json
import signal
import time

import numpy as np
import pytest
import torch
from bullmq import Queue
from PIL import Image, ImageEnhance, ImageOps
from redis.asyncio import Redis
from skimage import data

from apex_gpu_worker.cancellation import CancellationListener
from apex_gpu_worker.checks.faces import FaceAnalyzer
from apex_gpu_worker.contracts.redis_keys import RedisKeys
from apex_gpu_worker.job_events import JobEvents
from apex_gpu_worker.runtime import StepModels
from apex_gpu_worker.identity.evaluation import likeness, summary
from apex_gpu_worker.step_worker import start_step_worker
from apex_gpu_worker.steps.evaluate_identity import evaluate_identity_step
from apex_gpu_worker.steps.prepare_identity import prepare_identity_step
from apex_gpu_worker.steps.train_identity import train_identity_step
from apex_gpu_worker.training.lora_trainer import LoraTrainer
from apex_gpu_worker.training.recipe import TrainingRecipe
from support.queue_runs import run_step, wait_until_done
from test_worker_process import start_worker

IDENTITY = "66b1c2d3e4f5a60718293a4c"
PREFIX = f"identities/{IDENTITY}"
SIDE = 64


def png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def astronaut() -> Image.Image:
    return Image.fromarray(data.astronaut())


def astronaut_variants() -> list[Image.Image]:
    """The same person as an identity's uploads would show her: mirrored, darker, cropped, smaller."""
    a = astronaut()
    return [a, ImageOps.mirror(a), ImageEnhance.Brightness(a).enhance(0.7), a.crop((40, 0, 470, 430)), a.resize((400, 400))]


def upload(store, images: list[Image.Image]) -> list[str]:
    keys = []
    for index, image in enumerate(images):
        key = f"{PREFIX}/uploads/{index}.jpg"
        store.put_bytes(key, png(image, "JPEG"), "image/jpeg")
        keys.append(key)
    return keys


def listed(store, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in store._client.list_objects_v2(Bucket=store.bucket, Prefix=prefix).get("Contents", []))


def prepare_payload(keys: list[str]) -> dict:
    return {"identityId": IDENTITY, "photoKeys": keys, "resolution": 128, "triggerToken": "ohwx", "outputPrefix": f"{PREFIX}/photos"}


def train_payload(photo_keys: list[str], **recipe) -> dict:
    return {
        "identityId": IDENTITY,
        "photos": [{"key": k, "caption": "a photo of ohwx person"} for k in photo_keys],
        "recipe": {"steps": 12, "rank": 4, "learningRate": 8e-3, "resolution": SIDE, "seed": 3, "checkpointEvery": 4, **recipe},
        "checkpointKey": f"{PREFIX}/training/checkpoint.pt",
        "loraKey": f"{PREFIX}/lora.safetensors",
    }


def framed_photos(store) -> list[str]:
    """Two prepared squares, as prepare_identity writes them."""
    keys = []
    for index, image in enumerate([astronaut().crop((120, 0, 376, 256)), ImageOps.mirror(astronaut()).crop((136, 0, 392, 256))]):
        key = f"{PREFIX}/photos/{index}.png"
        store.put_bytes(key, png(image.resize((SIDE, SIDE))), "image/png")
        keys.append(key)
    return keys


async def progress_events(settings) -> list[dict]:
    redis = Redis.from_url(settings.redis_url)
    try:
        entries = await redis.xrange(RedisKeys(settings.contracts_dir, settings.queue_prefix).job_events_key(IDENTITY))
    finally:
        await redis.aclose()
    events = [json.loads(fields[b"data"]) for _, fields in entries if fields[b"type"] == b"progress"]
    return [e for e in events if e["step"] == "train_identity"]


@pytest.fixture
async def prepare_worker(settings, store):
    worker = start_step_worker("prepare_identity", prepare_identity_step(settings, store, FaceAnalyzer()), settings)
    yield worker
    await worker.close()


@pytest.fixture
def training_settings(settings, tiny_models):
    """Training on the tiny klein, ten times faster per step than the tiny Kontext the tests render
    portraits with: a base of its own, as APEX_GPU_TRAINING_MODEL names one."""
    settings.training_model = str(tiny_models["klein"])
    settings.progress_every_s = 0
    return settings


@pytest.fixture
async def train_worker(training_settings, store):
    settings = training_settings
    training_pipeline = StepModels(settings, ("train_identity",)).training_pipeline
    cancellations = CancellationListener(settings.redis_url, RedisKeys(settings.contracts_dir, settings.queue_prefix))
    await cancellations.start()
    events = JobEvents(settings.redis_url, RedisKeys(settings.contracts_dir, settings.queue_prefix))
    worker = start_step_worker("train_identity", train_identity_step(settings, store, training_pipeline, events), settings, cancellations)
    yield worker
    await worker.close()
    await cancellations.close()
    await events.close()


async def test_prepare_refuses_a_photo_set_naming_the_photo_without_a_face_and_writes_nothing(settings, store, prepare_worker):
    keys = upload(store, [astronaut(), ImageOps.mirror(astronaut()), Image.fromarray(data.coffee())])
    job, state = await run_step(settings, "prepare_identity", prepare_payload(keys))
    assert state == "failed"
    head = json.loads(job.failedReason.split("\n", 1)[0])
    assert head == {"code": "photo_refused", "params": {"index": "2", "reason": "no face found"}}
    assert listed(store, f"{PREFIX}/photos/") == []


async def test_prepare_frames_captions_and_embeds_every_photo_of_one_person(settings, store, prepare_worker):
    keys = upload(store, astronaut_variants())
    job, state = await run_step(settings, "prepare_identity", prepare_payload(keys))
    assert state == "completed", job.failedReason
    result = job.returnvalue
    assert [p["key"] for p in result["photos"]] == [f"{PREFIX}/photos/{i}.png" for i in range(5)]
    assert {p["caption"] for p in result["photos"]} == {"a photo of ohwx person"}
    for photo in result["photos"]:
        assert Image.open(io.BytesIO(store.get_bytes(photo["key"]))).size == (128, 128)
    embeddings = json.loads(store.get_bytes(result["embeddingsKey"]))
    assert result["embeddingsKey"] == f"{PREFIX}/photos/embeddings.json"
    assert [e["key"] for e in embeddings["photos"]] == [p["key"] for p in result["photos"]]
    assert all(len(e["embedding"]) == 128 and len(e["faceBox"]) == 4 for e in embeddings["photos"])


async def test_train_runs_to_the_end_and_leaves_a_lora_diffusers_loads(settings, store, train_worker, tiny_models, tmp_path):
    payload = train_payload(framed_photos(store))
    job, state = await run_step(settings, "train_identity", payload)
    assert state == "completed", job.failedReason
    result = job.returnvalue
    assert (result["stepsDone"], result["resumedFromStep"], len(result["recentLosses"])) == (12, 0, 12)
    assert job.progress["step"] == job.progress["total"] == 12
    assert [e["train_step"] for e in await progress_events(settings)] == list(range(1, 13))

    from diffusers import DiffusionPipeline

    (tmp_path / "lora.safetensors").write_bytes(store.get_bytes(result["loraKey"]))
    pipe = DiffusionPipeline.from_pretrained(tiny_models["klein"])
    pipe.load_lora_weights(tmp_path, weight_name="lora.safetensors", adapter_name="identity")
    assert pipe.get_active_adapters() == ["identity"]
    trained = [p for n, p in pipe.transformer.named_parameters() if "lora_B.identity" in n]
    assert trained and any(p.abs().sum() > 0 for p in trained)  # lora_B starts at 0: these are the trained weights


async def test_a_sigkilled_training_resumes_from_its_s3_checkpoint_and_repeats_at_most_one_interval(training_settings, store):
    settings, every, steps = training_settings, 5, 60
    payload = train_payload(framed_photos(store), steps=steps, checkpointEvery=every)
    # A lapsed lock is found within seconds, not BullMQ's 30 + 30 s.
    env = {"APEX_GPU_PROGRESS_EVERY_S": "0", "APEX_GPU_LOCK_DURATION_S": "3", "APEX_GPU_STALLED_INTERVAL_S": "1",
           "APEX_GPU_TRAINING_MODEL": settings.training_model}
    first = await start_worker(settings, "--role", "training", env=env)
    queue = Queue("train_identity", {"connection": settings.redis_url, "prefix": settings.queue_prefix})
    job = await queue.add("train_identity", payload, {"attempts": 1})
    for _ in range(3000):  # kill it once it is past its first checkpoint (up to a minute on a busy machine)
        done = [e["train_step"] for e in await progress_events(settings)]
        if done and done[-1] >= every + 2:
            break
        await asyncio.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    killed_at = [e["train_step"] for e in await progress_events(settings)][-1]
    assert killed_at < steps, "the run ended before it could be killed"

    second = await start_worker(settings, "--role", "training", env=env)
    try:
        finished, state = await wait_until_done(queue, job.id, timeout_s=180)
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()
        await queue.close()
    assert state == "completed", finished.failedReason

    seen = [e["train_step"] for e in await progress_events(settings)]
    restart = next(i for i in range(1, len(seen)) if seen[i] <= seen[i - 1])
    resumed_from = seen[restart] - 1
    assert resumed_from >= every and resumed_from % every == 0  # from a checkpoint, not from step 0
    assert seen[restart:] == list(range(resumed_from + 1, steps + 1))  # its step counter continues to the end
    assert seen[restart - 1] - resumed_from <= every  # at most one interval repeated
    result = finished.returnvalue
    assert (result["stepsDone"], result["resumedFromStep"]) == (steps, resumed_from)
    lora = store._client.head_object(Bucket=store.bucket, Key=payload["loraKey"])
    checkpoint = store._client.head_object(Bucket=store.bucket, Key=payload["checkpointKey"])
    assert lora["Metadata"]["steps"] == checkpoint["Metadata"]["step"] == str(steps)


async def test_a_cancelled_training_ends_within_a_step_and_trains_no_further(settings, store, train_worker):
    redis = Redis.from_url(settings.redis_url)
    keys = RedisKeys(settings.contracts_dir, settings.queue_prefix)
    payload = train_payload(framed_photos(store), steps=5000, checkpointEvery=1000)
    cancelled_after: list[int] = []

    async def cancel_once_training():
        for _ in range(3000):
            if done := await progress_events(settings):
                await redis.publish(keys.cancel_channel(), IDENTITY)
                cancelled_after.append(done[-1]["train_step"])
                return
            await asyncio.sleep(0.02)

    canceller = asyncio.create_task(cancel_once_training())
    job, state = await run_step(settings, "train_identity", payload, {"attempts": 3})
    await canceller
    await redis.aclose()
    assert state == "failed" and job.attemptsMade == 1
    assert json.loads(job.failedReason.split("\n", 1)[0])["code"] == "step_cancelled"
    ended_at = [e["train_step"] for e in await progress_events(settings)][-1]
    # The step in flight when the cancel arrived finishes (one more event may have been on its way).
    assert ended_at <= cancelled_after[0] + 2
    await asyncio.sleep(1)
    assert [e["train_step"] for e in await progress_events(settings)][-1] == ended_at  # nothing trains on
    assert listed(store, payload["loraKey"]) == []


@pytest.fixture
async def evaluate_worker(training_settings, store):
    pipe = StepModels(training_settings, ("evaluate_identity",)).training_pipeline
    worker = start_step_worker("evaluate_identity", evaluate_identity_step(training_settings, store, pipe, FaceAnalyzer()), training_settings)
    yield worker
    await worker.close()


def trained_identity(settings, store) -> dict:
    """A LoRA trained on a pipeline of its own and the photos' embeddings, where train_identity and
    prepare_identity leave them."""
    pipe = StepModels(settings, ("train_identity",)).training_pipeline
    photos = [Image.open(io.BytesIO(store.get_bytes(k))) for k in framed_photos(store)]
    trainer = LoraTrainer(pipe, TrainingRecipe(steps=6, rank=4, learning_rate=8e-3, resolution=SIDE, seed=3, checkpoint_every=6),
                          photos, ["a photo of ohwx person"] * len(photos))
    trainer.run()
    store.put_bytes(f"{PREFIX}/lora.safetensors", trainer.export_lora(), "application/octet-stream")
    trainer.close()
    face = FaceAnalyzer().faces(astronaut())[0]
    embeddings = {"photos": [{"key": f"{PREFIX}/photos/0.png", "embedding": face.embedding.tolist(), "faceBox": list(face.box)}]}
    store.put_bytes(f"{PREFIX}/photos/embeddings.json", json.dumps(embeddings).encode(), "application/json")
    return {"identityId": IDENTITY, "embeddingsKey": f"{PREFIX}/photos/embeddings.json", "loraKey": f"{PREFIX}/lora.safetensors",
            "seed": 7, "size": SIDE, "steps": 2, "triggerToken": "ohwx", "outputPrefix": f"{PREFIX}/evaluation"}


def pixels(store, key: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(store.get_bytes(key))).convert("RGB"))


def render_never_touched_by_a_lora(settings, prompt: str, seed: int, steps: int) -> np.ndarray:
    pipe = StepModels(settings, ("evaluate_identity",)).training_pipeline
    output = pipe(prompt=prompt, width=SIDE, height=SIDE, num_inference_steps=steps, guidance_scale=settings.default_guidance,
                  generator=torch.Generator("cpu").manual_seed(seed))
    return np.asarray(output.images[0].convert("RGB"))


async def test_evaluate_renders_each_held_out_portrait_without_and_with_the_lora_and_takes_the_lora_out(training_settings, store, evaluate_worker):
    payload = {**trained_identity(training_settings, store), "prompts": ["in a navy suit", "outdoors, warm light"]}
    job, state = await run_step(training_settings, "evaluate_identity", payload)
    assert state == "completed", job.failedReason
    renders = job.returnvalue["renders"]
    prompts = ["a photo of ohwx person, in a navy suit", "a photo of ohwx person, outdoors, warm light"]
    assert [(r["key"], r["prompt"], r["withLora"]) for r in renders] == [
        (f"{PREFIX}/evaluation/{i}.{kind}-lora.png", prompt, kind == "with") for i, prompt in enumerate(prompts) for kind in ("without", "with")]
    for without, with_lora in zip(renders[::2], renders[1::2]):
        assert not np.array_equal(pixels(store, without["key"]), pixels(store, with_lora["key"]))  # the same seed: the LoRA made the difference
    assert np.array_equal(pixels(store, renders[0]["key"]), render_never_touched_by_a_lora(training_settings, prompts[0], 7, 2))
    # Random weights draw noise: no face, no distance.
    assert all(r["faceFound"] is False and r["distance"] is None for r in renders)
    assert job.returnvalue["summary"] == {"medianDistanceWithLora": None, "medianDistanceWithoutLora": None,
                                          "rendersWithFace": {"withLora": 0, "withoutLora": 0}}

    # The adapter was taken out: the next evaluation's render without the LoRA is the untouched pipeline's.
    held_out = {k: v for k, v in payload.items() if k != "prompts"} | {"count": 1, "outputPrefix": f"{PREFIX}/evaluation-2"}
    again, state = await run_step(training_settings, "evaluate_identity", held_out)
    assert state == "completed", again.failedReason
    first = again.returnvalue["renders"][0]
    assert (len(again.returnvalue["renders"]), first["withLora"]) == (2, False)
    assert np.array_equal(pixels(store, first["key"]), render_never_touched_by_a_lora(training_settings, first["prompt"], 7, 2))


def test_a_render_showing_the_person_has_a_face_and_its_median_distance_to_the_identity_and_the_summary_reads_it():
    faces = FaceAnalyzer()
    references = [faces.faces(image)[0].embedding for image in astronaut_variants()[:3]]
    person = likeness(ImageOps.mirror(astronaut()), faces, references)
    noise = likeness(Image.fromarray(data.coffee()), faces, references)
    assert person.face_found and person.distance < 0.6  # the same person, by dlib's threshold
    assert (noise.face_found, noise.distance) == (False, None)
    assert summary([(False, noise), (True, person), (False, person)]) == {
        "medianDistanceWithLora": person.distance, "medianDistanceWithoutLora": person.distance,
        "rendersWithFace": {"withLora": 1, "withoutLora": 1}}
    assert summary([(True, noise), (False, noise)])["medianDistanceWithLora"] is None
