"""A prompt-step worker for the cross-language test (test/pythonInterop.test.ts): the real
step-worker wrapper with a scripted processor, so the test proves the queue interop, not a model."""

import asyncio
import signal

from bullmq import UnrecoverableError

from apex_gpu_worker.logs import configure_logging
from apex_gpu_worker.settings import WorkerSettings
from apex_gpu_worker.step_worker import start_step_worker


async def prompt(payload: dict, job, abort) -> dict:
    parameters = payload["parameters"]
    if parameters["vibe"] == "calm":
        raise UnrecoverableError("python prompt step refuses vibe calm")
    return {"prompt": f"python wrote: {parameters['purpose']} portrait, attempt {payload['attempt']}"}


async def main() -> None:
    configure_logging()
    worker = start_step_worker("prompt", prompt, WorkerSettings())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("python worker ready", flush=True)
    await stop.wait()
    await worker.close()


asyncio.run(main())
