"""Chaos for the Python side: Redis restarted (AOF on) while the worker holds and waits for jobs.
The TypeScript chaos suite covers the orchestrators; this one the `bullmq` PyPI worker's reconnect."""

import asyncio
import shutil
import socket
import subprocess

import pytest
from bullmq import Queue

from apex_gpu_worker.step_worker import start_step_worker
from test_step_worker import VALID

JOBS = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    """A Redis of this test alone (so it can be stopped), persisting with AOF like production."""

    def __init__(self, data_dir):
        self.port = free_port()
        self.args = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                     "--dir", str(data_dir), "--save", "", "--appendonly", "yes", "--appendfsync", "everysec"]
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    async def start(self):
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError("redis did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
async def own_redis(tmp_path):
    redis = OwnRedis(tmp_path)
    await redis.start()
    yield redis
    redis.stop()


async def test_jobs_survive_a_redis_restart_mid_flow(settings, own_redis):
    settings.redis_url = own_redis.url
    settings.concurrency = 2

    async def slow(payload, job, signal):
        await asyncio.sleep(0.3)
        return {"prompt": f"portrait for {job.id}"}

    queue = Queue("prompt", {"connection": own_redis.url, "prefix": settings.queue_prefix})
    worker = start_step_worker("prompt", slow, settings)
    ids = [(await queue.add("prompt", VALID, {"attempts": 5, "backoff": {"type": "exponential", "delay": 200}})).id for _ in range(JOBS)]
    while (await queue.getJobCounts("completed"))["completed"] < 3:
        await asyncio.sleep(0.05)

    own_redis.stop()
    await asyncio.sleep(2)
    await own_redis.start()

    states = {}
    for _ in range(1200):  # 60 s
        states = {i: await queue.getJobState(i) for i in ids}
        if all(s in ("completed", "failed") for s in states.values()):
            break
        await asyncio.sleep(0.05)
    await worker.close()
    await queue.close()
    lost = [i for i, s in states.items() if s != "completed"]
    print(f"python worker, redis restart: {JOBS} jobs, {JOBS - len(lost)} completed, {len(lost)} not ({set(states.values())})")
    assert lost == []


async def test_cancellations_still_arrive_after_a_redis_restart(settings, own_redis):
    from redis.asyncio import Redis

    from apex_gpu_worker.cancellation import CancellationListener
    from apex_gpu_worker.contracts.redis_keys import RedisKeys

    keys = RedisKeys(settings.contracts_dir, settings.queue_prefix)
    listener = CancellationListener(own_redis.url, keys)
    heard: list[str] = []
    listener.cancel = heard.append  # what the listener would abort, recorded
    await listener.start()
    publisher = Redis.from_url(own_redis.url)

    async def publish_until_heard(job_id: str) -> bool:
        for _ in range(100):  # 10 s: the listener may still be reconnecting
            await publisher.publish(keys.cancel_channel(), job_id)
            await asyncio.sleep(0.1)
            if job_id in heard:
                return True
        return False

    try:
        assert await publish_until_heard("before")
        own_redis.stop()
        await asyncio.sleep(1)
        await own_redis.start()
        assert await publish_until_heard("after")
    finally:
        await publisher.aclose()
        await listener.close()
