"""Appends to a job's event log, the Redis stream (its key from redis_keys.py) that the API serves as
Server-Sent Events (src/flows/jobEvents.ts is the TypeScript side and the format's definition)."""

import json

from redis.asyncio import Redis

from .redis_keys import RedisKeys

MAX_EVENTS = 2000
TTL_S = 7 * 24 * 3600


class JobEvents:
    def __init__(self, redis_url: str, keys: RedisKeys):
        self._redis = Redis.from_url(redis_url)
        self._keys = keys

    async def append(self, job_id: str, event_type: str, data: dict) -> None:
        key = self._keys.job_events_key(job_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"type": event_type, "data": json.dumps(data)}, maxlen=MAX_EVENTS, approximate=True)
            pipe.expire(key, TTL_S)
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()
