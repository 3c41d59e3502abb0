"""Appends to a job's event log, the Redis stream (its key and its limits from
contracts/redis_keys.py) that the API serves as Server-Sent Events (src/flows/jobEvents.ts is the
TypeScript side and the format's definition)."""

import json

from redis.asyncio import Redis

from .contracts.redis_keys import RedisKeys


class JobEvents:
    def __init__(self, redis_url: str, keys: RedisKeys):
        self._redis = Redis.from_url(redis_url)
        self._keys = keys

    async def append(self, job_id: str, event_type: str, data: dict) -> None:
        key, limits = self._keys.job_events_key(job_id), self._keys.job_event_log
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"type": event_type, "data": json.dumps(data)}, maxlen=limits.max_events, approximate=True)
            pipe.expire(key, limits.ttl_s)
            await pipe.execute()

    async def close(self) -> None:
        await self._redis.aclose()
