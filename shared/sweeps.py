"""Periodic sweeps: each service's jobs, run by the scheduler's messages or ``xinfang sweep``.

One failing job is logged and the others still run: a sweep never stops on
one bad job (and jobs themselves skip bad rows the same way).
"""
from __future__ import annotations

import logging
import time

import dramatiq

from shared.broker import declare_task
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

#: A sweep actor may run this long (ms); compose stop grace periods exceed it.
SWEEP_TIME_LIMIT_MS = 10 * 60_000


def run_sweeps(runtime: ServiceRuntime) -> dict[str, object]:
    """Run every periodic job of the service once; returns each job's result or error."""
    results: dict[str, object] = {}
    for job in runtime.sweeps:
        started = time.monotonic()
        try:
            results[job.name] = job.run(runtime)
        except Exception as exc:
            log.exception("%s: sweep job %s failed", runtime.name, job.name)
            results[job.name] = f"error: {exc!r}"
        finally:
            runtime.metrics.sweep_seconds.labels(runtime.name, job.name).observe(time.monotonic() - started)
    return results


def sweep_actor_name(service: str) -> str:
    return f"{service}.sweep"


def declare_sweep(runtime: ServiceRuntime) -> dramatiq.Actor:
    def sweep() -> None:
        log.info("%s: sweep %s", runtime.name, run_sweeps(runtime))

    return declare_task(runtime, sweep_actor_name(runtime.name), sweep, max_retries=0,
                        time_limit=SWEEP_TIME_LIMIT_MS)
