"""assign_svc actors (queue ``assign``): petition.registered -> case (交办); the sweep."""
from __future__ import annotations

from assign_svc import service
from shared.broker import declare_consumer
from shared.outbox import emitting_together
from shared.runtime import ServiceRuntime
from shared.sweeps import declare_sweep


def on_petition_registered(runtime: ServiceRuntime, session, envelope) -> None:
    # case.action_recorded, case.status_changed, case.assigned, 交办 and 包案 notices: one outbox INSERT
    with emitting_together(session, runtime.outbox_model, producer=runtime.name):
        service.assign_petition(session, runtime, envelope.payload)


def register(runtime: ServiceRuntime) -> None:
    declare_consumer(runtime, "assign.petition_registered", on_petition_registered,
                     max_retries=5, time_limit=30_000)
    declare_sweep(runtime)
