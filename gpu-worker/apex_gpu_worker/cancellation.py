"""Cross-process cancellation. BullMQ cancels only jobs running in the same process, so a cancel
request is broadcast: the API publishes the job id on the cancel channel and sets the job's
cancelled flag (for steps that start later; both keys from contracts/redis_keys.py). Every worker process,
TypeScript or Python, aborts the step jobs it holds for that job id."""

import asyncio
import logging
from collections import defaultdict

from bullmq import Worker
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .contracts.redis_keys import RedisKeys

log = logging.getLogger("apex_gpu_worker.cancel")

RESUBSCRIBE_DELAY_S = 0.5


class CancellationListener:
    def __init__(self, redis_url: str, keys: RedisKeys):
        self._redis = Redis.from_url(redis_url)
        self._keys = keys
        self._running: dict[str, set[tuple[Worker, str]]] = defaultdict(set)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._keys.cancel_channel())
        self._task = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, pubsub) -> None:
        """Follows the channel for the worker's lifetime. A lost connection (Redis restarted) ends
        the subscription without a word; it is re-established, or cancellations would silently stop."""
        while True:
            try:
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        self.cancel(message["data"].decode())
            except RedisError as err:
                log.warning("cancel channel lost; subscribing again", extra={"fields": {"error": str(err)}})
            await pubsub.aclose()
            await asyncio.sleep(RESUBSCRIBE_DELAY_S)
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._keys.cancel_channel())
            except RedisError:
                pass  # still down: listen() fails at once and this loop tries again

    def cancel(self, job_id: str) -> None:
        for worker, bull_job_id in list(self._running.get(job_id, ())):
            log.info("cancelling step", extra={"fields": {"jobId": job_id, "bullJobId": bull_job_id}})
            worker.cancelJob(bull_job_id, "cancelled by request")

    async def is_cancelled(self, job_id: str) -> bool:
        return bool(await self._redis.exists(self._keys.cancelled_key(job_id)))

    def track(self, job_id: str, worker: Worker, bull_job_id: str) -> None:
        self._running[job_id].add((worker, bull_job_id))

    def untrack(self, job_id: str, worker: Worker, bull_job_id: str) -> None:
        self._running[job_id].discard((worker, bull_job_id))
        if not self._running[job_id]:
            del self._running[job_id]

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
        await self._redis.aclose()
