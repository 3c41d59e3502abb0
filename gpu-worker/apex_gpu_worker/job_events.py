"""Appends to a job's event log, the Redis stream `<prefix>:events:<jobId>` that the API serves as
Server-Sent Events (src/flows/jobEvents.ts is the TypeScript side and the format's definition)."""

import json

from redis.asyncio import Redis

MAX_EVENTS = 2000
TTL_S = 7 * 24 * 3600


class JobEvents:
    def __init__(self, redis_url: str, prefix: str):
        self._redis = Redis.from_url(redis_url)
        self._prefix = prefix

    async def append(self, job_id: str, event_type: str, data: dict) -> None:
        key = f"{self._prefix}:events:{job_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"type": event_type, "data": json.dumps(data)}, maxlen=MAX_EVENTS, approximate=True)
            pipe.expire(key, TTL_S)
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()
