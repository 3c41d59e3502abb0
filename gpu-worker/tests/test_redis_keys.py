"""The Redis keys both languages share, and the event-log limits, are read from
contracts/redis-keys.json, which the TypeScript side exports from its own layout
(src/flows/redisKeys.ts, src/flows/jobEvents.ts)."""

import json

from redis.asyncio import Redis

from apex_gpu_worker.job_events import JobEvents
from apex_gpu_worker.contracts.redis_keys import RedisKeys
from apex_gpu_worker.settings import WorkerSettings

CONTRACTS = WorkerSettings().contracts_dir
JOB_ID = "65a1b2c3d4e5f60718293a4b"


def test_the_keys_are_those_the_typescript_side_uses():
    keys = RedisKeys(CONTRACTS, "apex")
    assert keys.job_events_key(JOB_ID) == f"apex:events:{JOB_ID}"
    assert keys.cancel_channel() == "apex:cancel"
    assert keys.cancelled_key(JOB_ID) == f"apex:cancelled:{JOB_ID}"


def test_the_keys_follow_the_exported_layout_not_a_copy_of_it(tmp_path):
    (tmp_path / "redis-keys.json").write_text(json.dumps({
        "keys": {"jobEvents": "{prefix}:job:{jobId}:events", "cancelChannel": "{prefix}:cancellations", "cancelledFlag": "{prefix}:job:{jobId}:cancelled"},
        "jobEventLog": {"maxEvents": 10, "ttlSeconds": 60},
    }))
    keys = RedisKeys(tmp_path, "tenant-a")
    assert keys.job_events_key(JOB_ID) == f"tenant-a:job:{JOB_ID}:events"
    assert keys.cancel_channel() == "tenant-a:cancellations"
    assert keys.cancelled_key(JOB_ID) == f"tenant-a:job:{JOB_ID}:cancelled"


async def test_job_events_are_appended_to_the_jobs_event_stream(services):
    keys = RedisKeys(CONTRACTS, "pykeys")
    events = JobEvents(services["REDIS_URL"], keys)
    redis = Redis.from_url(services["REDIS_URL"])
    try:
        await events.append(JOB_ID, "progress", {"step": "generate", "denoise_step": 1})
        [(_, fields)] = await redis.xrange(keys.job_events_key(JOB_ID))
        assert fields == {b"type": b"progress", b"data": b'{"step": "generate", "denoise_step": 1}'}
    finally:
        await redis.delete(keys.job_events_key(JOB_ID))
        await redis.aclose()
        await events.close()


async def test_a_job_event_log_keeps_the_limits_the_typescript_side_exports(services):
    keys = RedisKeys(CONTRACTS, "pylimits")
    events = JobEvents(services["REDIS_URL"], keys)
    redis = Redis.from_url(services["REDIS_URL"])
    try:
        assert (keys.job_event_log.max_events, keys.job_event_log.ttl_s) == (2000, 7 * 24 * 3600)
        await events.append(JOB_ID, "progress", {"step": "generate"})
        assert 7 * 24 * 3600 - 60 < await redis.ttl(keys.job_events_key(JOB_ID)) <= 7 * 24 * 3600
    finally:
        await redis.delete(keys.job_events_key(JOB_ID))
        await redis.aclose()
        await events.close()
