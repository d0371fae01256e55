"""notify_svc: notices to the right people, acknowledgement (签收), escalation."""
from __future__ import annotations

from typing import Any, Mapping

import dramatiq
from flask import Flask

from notify_svc import actors, models
from notify_svc.api import blp
from notify_svc.templates import environment
from shared.config import Settings, settings_from
from shared.runtime import ServiceRuntime
from shared.web import make_service_app

NAME = "notify"


def build_runtime(settings: Settings, *, broker: dramatiq.Broker | None = None) -> ServiceRuntime:
    environment()  # a broken template fails here, at start, not when a notice is sent
    runtime = ServiceRuntime.build(NAME, settings, metadata=models.Base.metadata, outbox_model=models.Outbox,
                                   inbox_model=models.ProcessedMessage, broker=broker)
    actors.register(runtime)
    return runtime


def create_app(config: Settings | Mapping[str, Any] | None = None, *, runtime: ServiceRuntime | None = None) -> Flask:
    runtime = runtime or build_runtime(settings_from(config))
    return make_service_app(runtime, title="xinfang notify_svc 通知与签收", blueprints=[blp],
                            description="Notices, inboxes, acknowledgement and escalation.")
