"""notify_svc: notices to the right people, acknowledgement (签收), escalation."""
from __future__ import annotations

import re
from typing import Any, Mapping

import dramatiq
from flask import Flask

from notify_svc import actors, models
from notify_svc.api import blp, ops_blp
from notify_svc.pages import pages
from notify_svc.settings import NotifySettings
from notify_svc.templates import check_templates
from shared.config import Settings, settings_from
from shared.runtime import ServiceRuntime
from shared.web import make_service_app

NAME = "notify"


def build_runtime(settings: Settings, *, broker: dramatiq.Broker | None = None,
                  notify: NotifySettings | None = None) -> ServiceRuntime:
    """``notify``: the channel/policy settings (default: ``XINFANG_NOTIFY_*`` and the policy file)."""
    cfg = notify or NotifySettings.from_env(secret_key=settings.secret_key)
    check_templates(cfg)  # a broken template or policy sample fails here, at start, not when a notice is sent
    runtime = ServiceRuntime.build(NAME, settings, metadata=models.Base.metadata, outbox_model=models.Outbox,
                                   inbox_model=models.ProcessedMessage, broker=broker)
    runtime.extras["notify"] = cfg
    actors.register(runtime)
    return runtime


def create_app(config: Settings | Mapping[str, Any] | None = None, *, runtime: ServiceRuntime | None = None) -> Flask:
    runtime = runtime or build_runtime(settings_from(config))
    app = make_service_app(runtime, title="xinfang notify_svc 通知与签收", blueprints=[blp, ops_blp],
                           description="Notices, inboxes, acknowledgement and escalation.",
                           open_paths=[re.compile(r"/notify/inbox(/.*)?"), re.compile(r"/notify/ack(/[^/]+)?"),
                                       re.compile(r"/notify/unacknowledged")])
    app.register_blueprint(pages)
    return app
