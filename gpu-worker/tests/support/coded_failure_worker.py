"""A prompt-step worker for test/stepErrorCodes.test.ts: the real step-worker wrapper with a
processor that raises the coded error the test names in Redis (`<prefix>:test:raise`), so each
code crosses from a real Python raise; "uncoded" raises a plain permanent failure."""

import asyncio
import signal

from bullmq import UnrecoverableError
from redis.asyncio import Redis

from apex_gpu_worker.contracts.loader import read_contract
from apex_gpu_worker.contracts.step_errors import STEP_ERRORS_FILE, step_error_classes
from apex_gpu_worker.logs import configure_logging
from apex_gpu_worker.settings import WorkerSettings
from apex_gpu_worker.step_worker import start_step_worker

DETAIL = "internal detail: /srv/apex/models/vlm refused"
# What a code's message may name, as test/stepErrorCodes.test.ts expects to read it back.
PARAMS = {"repo": "owner/face", "index": "2", "reason": "no face found"}


async def main() -> None:
    configure_logging()
    settings = WorkerSettings()
    redis = Redis.from_url(settings.redis_url, decode_responses=True)

    async def prompt(payload: dict, job, abort) -> dict:
        code = await redis.get(f"{settings.queue_prefix}:test:raise")
        if code == "uncoded":
            raise UnrecoverableError(DETAIL)
        named = read_contract(settings.contracts_dir, STEP_ERRORS_FILE)["codes"][code].get("params", [])
        raise step_error_classes()[code](DETAIL, **{name: PARAMS[name] for name in named})

    worker = start_step_worker("prompt", prompt, settings)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("python worker ready", flush=True)
    await stop.wait()
    await worker.close()
    await redis.aclose()


asyncio.run(main())
