import asyncio
import base64
import io
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from bullmq import Queue
from PIL import Image
from pydantic import SecretStr
from redis.asyncio import Redis

from apex_gpu_worker.diffusion.engine import DiffusionEngine, GenerationRequest
from apex_gpu_worker.diffusion.loras import LoraRequest, LoraUnusable
from apex_gpu_worker.contracts.redis_keys import RedisKeys
from apex_gpu_worker.settings import model_name
from apex_gpu_worker.step_worker import start_step_worker
from apex_gpu_worker.cancellation import CancellationListener
from apex_gpu_worker.steps.generate import generate_step
from support.loras import publish_file, publish_lora
from support.queue_runs import JOB_ID, run_step, wait_until_done
from support.sealing import seal
from support.tcp_listener import Listener

PAYLOAD = {
    "jobId": JOB_ID,
    "attempt": 1,
    "prompt": "a professional portrait photo",
    "seed": 42,
    "width": 256,
    "height": 320,
    "numImages": 1,
    "loras": [],
    "outputPrefix": f"jobs/{JOB_ID}/attempts/1",
}


@pytest.fixture
def engine(settings):
    return DiffusionEngine(settings, settings.flux_model)


@pytest.fixture
async def generate_worker(settings, store, engine):
    cancellations = CancellationListener(settings.redis_url, RedisKeys(settings.contracts_dir, settings.queue_prefix))
    await cancellations.start()
    worker = start_step_worker("generate", generate_step(settings, store, engine), settings, cancellations)
    yield worker
    await worker.close()
    await cancellations.close()


def render(engine, seed=1, loras=()):
    request = GenerationRequest("a portrait", seed, 256, 256, 1, 4, 3.5, list(loras))
    return engine.generate(request, lambda step, total: False).images[0].tobytes()


async def test_generate_renders_uploads_and_reports_through_a_real_queue(settings, store, generate_worker):
    job, state = await run_step(settings, "generate", {**PAYLOAD, "numImages": 2, "outputFormat": "webp"})
    assert state == "completed", job.failedReason
    result = job.returnvalue
    assert [i["key"] for i in result["images"]] == [f"jobs/{JOB_ID}/attempts/1/0.webp", f"jobs/{JOB_ID}/attempts/1/1.webp"]
    assert result["seed"] == 42
    assert set(result["timings"]) == {"queueWaitSeconds", "loraLoadSeconds", "denoiseSeconds", "upscaleSeconds", "uploadSeconds"}
    assert job.progress == {"step": 4, "total": 4}
    image = Image.open(io.BytesIO(store.get_bytes(result["images"][0]["key"])))
    assert (image.format, image.size) == ("WEBP", (256, 320))
    assert b"apex:generation" in image.info["xmp"]


async def test_the_image_metadata_names_the_model_without_the_servers_path_to_it(settings, store, generate_worker):
    job, state = await run_step(settings, "generate", PAYLOAD)
    assert state == "completed", job.failedReason
    text = Image.open(io.BytesIO(store.get_bytes(job.returnvalue["images"][0]["key"]))).info["apex:generation"]
    folder = Path(settings.flux_model)
    assert folder.is_absolute() and json.loads(text)["model"] == folder.name
    assert str(folder.parent) not in text
    assert model_name("black-forest-labs/FLUX.1-dev") == "black-forest-labs/FLUX.1-dev"  # a Hub id is a name already


async def test_a_size_above_the_native_budget_is_rendered_smaller_and_resized_to_the_request(settings, store, generate_worker):
    job, state = await run_step(settings, "generate", {**PAYLOAD, "width": 816, "height": 1024})
    assert state == "completed", job.failedReason
    image = Image.open(io.BytesIO(store.get_bytes(job.returnvalue["images"][0]["key"])))
    assert image.size == (816, 1024)
    metadata = json.loads(image.text["apex:generation"])
    assert metadata["seed"] == 42 and metadata["prompt"] == PAYLOAD["prompt"]


async def test_an_invalid_payload_fails_permanently_naming_the_field(settings, store, generate_worker):
    job, state = await run_step(settings, "generate", {**PAYLOAD, "width": 250}, {"attempts": 3})
    assert state == "failed" and job.attemptsMade == 1
    assert "invalid generate input: width" in job.failedReason


async def test_an_unknown_lora_repo_fails_permanently_with_a_clear_message(settings, store, generate_worker):
    data = {**PAYLOAD, "loras": [{"repo": "nobody/no-such-lora", "weight_name": "x.safetensors", "scale": 1}]}
    job, state = await run_step(settings, "generate", data, {"attempts": 3})
    assert state == "failed" and job.attemptsMade == 1
    assert "nobody/no-such-lora is not in the local cache and the Hub is offline" in job.failedReason


async def test_s3_failure_is_retried_and_the_step_then_completes(settings, store, generate_worker):

    store._client.delete_bucket(Bucket=settings.s3_bucket)  # the upload fails until the bucket is back
    queue = Queue("generate", {"connection": settings.redis_url, "prefix": settings.queue_prefix})
    job = await queue.add("generate", PAYLOAD, {"attempts": 5, "backoff": {"type": "fixed", "delay": 500}})
    for _ in range(2400):  # restore the bucket only once a try has failed on it
        if (await queue.getJob(job.id)).attemptsMade >= 1:
            break
        await asyncio.sleep(0.05)
    store._client.create_bucket(Bucket=settings.s3_bucket)
    finished, state = await wait_until_done(queue, job.id)
    await queue.close()
    assert state == "completed", finished.failedReason
    assert finished.attemptsMade >= 2


async def test_cancellation_stops_the_denoise_between_steps(settings, store, generate_worker):
    redis = Redis.from_url(settings.redis_url)
    steps_seen = []
    data = {**PAYLOAD, "steps": 100, "width": 512, "height": 512}

    async def cancel_after_first_progress():
        from bullmq import Queue

        queue = Queue("generate", {"connection": settings.redis_url, "prefix": settings.queue_prefix})
        for _ in range(600):
            job = await queue.getJob("cancel-me")
            if job and isinstance(job.progress, dict):
                steps_seen.append(job.progress["step"])
                await redis.publish(RedisKeys(settings.contracts_dir, settings.queue_prefix).cancel_channel(), JOB_ID)
                break
            await asyncio.sleep(0.02)
        await queue.close()

    canceller = asyncio.create_task(cancel_after_first_progress())
    job, state = await run_step(settings, "generate", data, {"jobId": "cancel-me", "attempts": 3})
    await canceller
    await redis.aclose()
    assert state == "failed" and job.attemptsMade == 1
    assert "cancelled" in job.failedReason
    assert steps_seen and job.progress["step"] < 100


def test_same_seed_same_image_and_another_seed_another(engine):
    assert render(engine, seed=7) == render(engine, seed=7)
    assert render(engine, seed=7) != render(engine, seed=8)


def test_a_lora_changes_the_output_and_two_loras_combine_with_their_scales(settings, tiny_models, engine):
    publish_lora(tiny_models["flux"], settings.lora_cache_dir, "acme/face-a", "a.safetensors", seed=1)
    publish_lora(tiny_models["flux"], settings.lora_cache_dir, "acme/style-b", "b.safetensors", seed=2)
    a = LoraRequest("acme/face-a", "a.safetensors", 1.0)
    b = LoraRequest("acme/style-b", "b.safetensors", 0.7)
    plain = render(engine)
    with_a = render(engine, loras=[a])
    with_both = render(engine, loras=[a, b])
    with_a_weaker = render(engine, loras=[LoraRequest(a.repo, a.weight_name, 0.3)])
    assert len({plain, with_a, with_both, with_a_weaker}) == 4
    assert render(engine) == plain  # adapters are switched off again for a request without LoRAs


def test_switching_loras_50_times_keeps_memory_bounded(settings, tiny_models, engine):
    import psutil

    repos = [LoraRequest(f"acme/lora-{i}", "w.safetensors", 1.0) for i in range(6)]  # more than the 4 slots
    for i, lora in enumerate(repos):
        publish_lora(tiny_models["flux"], settings.lora_cache_dir, lora.repo, "w.safetensors", seed=10 + i)
    params = lambda: sum(p.numel() for p in engine.pipe.transformer.parameters())  # noqa: E731
    render(engine, loras=[repos[0]])
    baseline_params, baseline_rss = params(), psutil.Process().memory_info().rss
    for i in range(50):
        render(engine, loras=[repos[i % len(repos)]])
    assert len(engine.loras.loaded) == settings.lora_max_loaded
    assert params() <= baseline_params * 1.0 + 4 * (baseline_params // 10)  # at most the 4 slots' adapters
    assert psutil.Process().memory_info().rss - baseline_rss < 200 * 2**20


def test_an_unreadable_or_foreign_lora_is_a_clear_permanent_failure(settings, engine):
    from safetensors.torch import save

    publish_file(settings.lora_cache_dir, "acme/broken", "w.safetensors", b"not a safetensors file")
    foreign = save({"lora_unet_down_blocks_0_attn.lora_down.weight": __import__("torch").zeros(4, 8)})
    publish_file(settings.lora_cache_dir, "acme/sdxl-lora", "w.safetensors", foreign)
    for repo in ("acme/broken", "acme/sdxl-lora"):
        with pytest.raises(LoraUnusable, match=repo) as raised:
            render(engine, loras=[LoraRequest(repo, "w.safetensors", 1.0)])
        assert str(settings.lora_cache_dir) not in str(raised.value)  # the caller reads it: no server path
    assert render(engine) == render(engine)  # the engine still works afterwards


def test_with_torch_compile_loras_are_hotswapped_without_recompiling(settings, tiny_models):
    import torch._dynamo

    settings.compile = True
    settings.lora_max_loaded = 2
    settings.lora_max_rank = 16
    engine = DiffusionEngine(settings, settings.flux_model)
    loras = [LoraRequest(f"acme/hot-{i}", "w.safetensors", 1.0) for i in range(4)]  # more than the 2 slots
    for i, lora in enumerate(loras):
        publish_lora(tiny_models["flux"], settings.lora_cache_dir, lora.repo, "w.safetensors", seed=30 + i, rank=4 + 2 * i)
    outputs = [render(engine, loras=[loras[0]]), render(engine, loras=[loras[1]])]  # compiles, fills both slots
    torch._dynamo.config.error_on_recompile = True
    try:
        outputs += [render(engine, loras=[lora]) for lora in loras[2:]]  # evicts and hotswaps into the slots
    finally:
        torch._dynamo.config.error_on_recompile = False
    assert len(set(outputs)) == 4


@pytest.fixture
def caller(settings, store, services):
    """A caller's own bucket on the test MinIO (127.0.0.1), its keys, and the SECRETS_KEY the API
    sealed them with; the worker reads the same settings object."""
    key = base64.b64encode(os.urandom(32)).decode()
    settings.secrets_key = SecretStr(key)
    bucket = f"caller-{os.urandom(4).hex()}"
    store._client.create_bucket(Bucket=bucket)
    keys = {"access_key_id": services["S3_ACCESS_KEY_ID"], "secret_access_key": services["S3_SECRET_ACCESS_KEY"]}
    return SimpleNamespace(key=key, keys=keys, destination={"bucket": bucket, "prefix": "renders", "endpoint": services["S3_ENDPOINT"]})


def object_count(store, bucket: str) -> int:
    return store._client.list_objects_v2(Bucket=bucket).get("KeyCount", 0)


async def test_images_go_to_the_callers_own_bucket_with_keys_from_the_sealed_secrets(settings, store, caller, generate_worker):
    settings.destination_allow_private = True
    data = {**PAYLOAD, "destination": caller.destination, "secrets": seal(caller.key, JOB_ID, {"s3": caller.keys}, caller.destination)}
    job, state = await run_step(settings, "generate", data)
    assert state == "completed", job.failedReason
    image = job.returnvalue["images"][0]
    bucket = caller.destination["bucket"]
    assert image["bucket"] == bucket and image["key"] == f"renders/jobs/{JOB_ID}/attempts/1/0.png"
    assert store._client.get_object(Bucket=bucket, Key=image["key"])["ContentType"] == "image/png"
    assert object_count(store, settings.s3_bucket) == 0  # nothing in ours
    assert caller.keys["secret_access_key"] not in str(job.returnvalue)


async def test_a_destination_on_a_private_address_is_refused_unless_the_deployment_allows_it(settings, store, caller, generate_worker):
    data = {**PAYLOAD, "destination": caller.destination, "secrets": seal(caller.key, JOB_ID, {"s3": caller.keys}, caller.destination)}
    job, state = await run_step(settings, "generate", data, {"attempts": 3})
    assert state == "failed" and job.attemptsMade == 1
    assert "destination.endpoint is refused: 127.0.0.1 is not a public address" in job.failedReason
    assert object_count(store, caller.destination["bucket"]) == 0 and object_count(store, settings.s3_bucket) == 0


async def test_secrets_sealed_for_one_destination_do_not_open_for_an_edited_or_removed_one(settings, store, caller, generate_worker):
    settings.destination_allow_private = True  # only the seal stands between the keys and the edited endpoint
    listener = Listener()
    other_bucket = f"other-{os.urandom(4).hex()}"
    store._client.create_bucket(Bucket=other_bucket)
    sealed = seal(caller.key, JOB_ID, {"s3": caller.keys}, caller.destination)
    edited = [{**caller.destination, "bucket": other_bucket}, {**caller.destination, "endpoint": f"http://127.0.0.1:{listener.port}"},
              {**caller.destination, "prefix": "elsewhere"}, {**caller.destination, "region": "eu-west-1"}, None]
    payloads = [{**PAYLOAD, "secrets": sealed, **({"destination": d} if d else {})} for d in edited]
    # and the other way round: keys sealed for the deployment's bucket, a destination added
    payloads.append({**PAYLOAD, "destination": caller.destination, "secrets": seal(caller.key, JOB_ID, {"s3": caller.keys})})
    try:
        for data in payloads:
            job, state = await run_step(settings, "generate", data, {"attempts": 3})
            assert state == "failed" and job.attemptsMade == 1, data.get("destination")
            assert "the job's sealed secrets cannot be opened" in job.failedReason
    finally:
        listener.close()
    assert listener.received == []
    for bucket in (caller.destination["bucket"], other_bucket, settings.s3_bucket):
        assert object_count(store, bucket) == 0


async def test_a_destination_without_its_keys_fails_permanently(settings, store, generate_worker):
    data = {**PAYLOAD, "destination": {"bucket": "somebody-elses"}}
    job, state = await run_step(settings, "generate", data, {"attempts": 3})
    assert state == "failed" and job.attemptsMade == 1
    assert "destination needs the bucket's keys in secrets.s3" in job.failedReason
