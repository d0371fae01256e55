"""intake_svc actors (queue ``intake``): follow cases (case.status_changed); the sweep."""
from __future__ import annotations

from intake_svc import service
from shared.broker import declare_consumer
from shared.runtime import ServiceRuntime
from shared.sweeps import declare_sweep


def register(runtime: ServiceRuntime) -> None:
    declare_consumer(runtime, "intake.case_status_changed",
                     lambda rt, session, env: service.apply_case_status(session, env.payload),
                     max_retries=5, time_limit=30_000)
    declare_sweep(runtime)
