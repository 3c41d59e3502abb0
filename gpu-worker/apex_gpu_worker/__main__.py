"""python -m apex_gpu_worker --role diffusion|vlm|training|all [--queues q1,q2] [--concurrency N]"""

import argparse
import asyncio
import logging
import signal

from .contracts.steps import ALL_POOLS, step_catalogue
from .logs import configure_logging
from .runtime import WorkerRuntime, build_processors
from .settings import WorkerSettings
from .telemetry import start_tracing


def parse_args(roles: dict[str, tuple[str, ...]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="apex_gpu_worker", description="APEX Portraits GPU step worker")
    parser.add_argument("--role", choices=sorted(roles), default=ALL_POOLS)
    parser.add_argument("--queues", help="comma-separated subset of the role's queues")
    parser.add_argument("--concurrency", type=int, help="jobs in flight per queue (default APEX_GPU_CONCURRENCY)")
    return parser.parse_args()


async def main() -> None:
    settings = WorkerSettings()
    roles = step_catalogue(settings.contracts_dir).roles  # one per pool of contracts/steps.json, and all
    args = parse_args(roles)
    if args.concurrency:
        settings.concurrency = args.concurrency
    queues = roles[args.role]
    if args.queues:
        wanted = tuple(q.strip() for q in args.queues.split(",") if q.strip())
        unknown = set(wanted) - set(queues)
        if unknown:
            raise SystemExit(f"--queues: {sorted(unknown)} are not served by role {args.role} ({', '.join(queues)})")
        queues = wanted
    tracing = start_tracing(settings.otel_exporter_otlp_endpoint, settings.otel_service_name)
    processors = await asyncio.to_thread(build_processors, settings, queues)
    runtime = await WorkerRuntime.start(settings, processors)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("apex_gpu_worker").info("shutting down")
    await runtime.stop()
    if tracing:
        tracing.shutdown()  # flushes the spans still batched


if __name__ == "__main__":
    configure_logging()
    asyncio.run(main())
