"""The Redis keys outside BullMQ's own that both languages use. The layout is defined once, in
src/flows/redisKeys.ts, and exported by `npm run contracts` to contracts/redis-keys.json; this
module builds the keys from those templates, as BullMQ's queue_keys.py mirrors queue-keys.ts."""

import json
import re
from functools import cache
from pathlib import Path

LAYOUT_FILE = "redis-keys.json"


@cache
def key_layout(contracts_dir: Path) -> dict[str, str]:
    """The templates by name (`{"jobEvents": "{prefix}:events:{jobId}", ...}`)."""
    return json.loads((contracts_dir / LAYOUT_FILE).read_text())


def _fill(template: str, **values: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


class RedisKeys:
    """The keys of one deployment (one queue prefix). The templates are read when it is built, so a
    layout missing one of them stops the worker at start."""

    def __init__(self, contracts_dir: Path, prefix: str):
        layout = key_layout(contracts_dir)
        self.prefix = prefix
        self._job_events, self._cancel_channel, self._cancelled_flag = (
            layout["jobEvents"], layout["cancelChannel"], layout["cancelledFlag"])

    def job_events_key(self, job_id: str) -> str:
        """A job's event log (a stream): the orchestrator's transitions and this worker's progress."""
        return _fill(self._job_events, prefix=self.prefix, jobId=job_id)

    def cancel_channel(self) -> str:
        """Pub/sub channel on which cancelled job ids are broadcast to every worker process."""
        return _fill(self._cancel_channel, prefix=self.prefix)

    def cancelled_key(self, job_id: str) -> str:
        """Marks a cancelled job, so steps that start later refuse to run."""
        return _fill(self._cancelled_flag, prefix=self.prefix, jobId=job_id)
