"""The Redis keys outside BullMQ's own that both languages use, and how long a job's event log is
kept. The layout is defined once, in TypeScript (src/flows/redisKeys.ts, the limits in
src/flows/jobEvents.ts), and exported by `npm run contracts` to contracts/redis-keys.json; this
module builds the keys from those templates, as BullMQ's queue_keys.py mirrors queue-keys.ts."""

import re
from dataclasses import dataclass
from pathlib import Path

from .loader import read_contract

LAYOUT_FILE = "redis-keys.json"


@dataclass(frozen=True)
class JobEventLogLimits:
    max_events: int  # the stream is trimmed (approximately) to this many events
    ttl_s: int  # and expires this long after its last event


def _fill(template: str, **values: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


class RedisKeys:
    """The keys of one deployment (one queue prefix). The layout is read when it is built, so a
    layout missing one of its parts stops the worker at start."""

    def __init__(self, contracts_dir: Path, prefix: str):
        layout = read_contract(contracts_dir, LAYOUT_FILE)
        keys, limits = layout["keys"], layout["jobEventLog"]
        self.prefix = prefix
        self._job_events, self._cancel_channel, self._cancelled_flag = keys["jobEvents"], keys["cancelChannel"], keys["cancelledFlag"]
        self.job_event_log = JobEventLogLimits(limits["maxEvents"], limits["ttlSeconds"])

    def job_events_key(self, job_id: str) -> str:
        """A job's event log (a stream): the orchestrator's transitions and this worker's progress."""
        return _fill(self._job_events, prefix=self.prefix, jobId=job_id)

    def cancel_channel(self) -> str:
        """Pub/sub channel on which cancelled job ids are broadcast to every worker process."""
        return _fill(self._cancel_channel, prefix=self.prefix)

    def cancelled_key(self, job_id: str) -> str:
        """Marks a cancelled job, so steps that start later refuse to run."""
        return _fill(self._cancelled_flag, prefix=self.prefix, jobId=job_id)
