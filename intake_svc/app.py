"""intake_svc: the front door where county systems register petitions (信访件登记)."""
from __future__ import annotations

from typing import Any, Mapping

import dramatiq
from flask import Flask

from intake_svc import actors, models
from intake_svc.api import blp
from shared.config import Settings, settings_from
from shared.runtime import ServiceRuntime
from shared.web import make_service_app

NAME = "intake"


def build_runtime(settings: Settings, *, broker: dramatiq.Broker | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime.build(NAME, settings, metadata=models.Base.metadata, outbox_model=models.Outbox,
                                   inbox_model=models.ProcessedMessage, broker=broker)
    actors.register(runtime)
    return runtime


def create_app(config: Settings | Mapping[str, Any] | None = None, *, runtime: ServiceRuntime | None = None) -> Flask:
    runtime = runtime or build_runtime(settings_from(config))
    return make_service_app(runtime, title="xinfang intake_svc 信访件登记", blueprints=[blp],
                            description="Registration of petitions by county systems and registrars.")
