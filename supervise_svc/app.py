"""supervise_svc: the 五必查 checks, the escalation ladder, 三率三色 scorecards."""
from __future__ import annotations

from typing import Any, Mapping

import dramatiq
from flask import Flask

from shared.config import Settings, settings_from
from shared.runtime import ServiceRuntime
from shared.web import make_service_app
from supervise_svc import actors, api, api_admin, api_interviews, api_scores, models, scoring, scoring_models  # noqa: F401
from supervise_svc.scores import facts

NAME = "supervise"


def build_runtime(settings: Settings, *, broker: dramatiq.Broker | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime.build(NAME, settings, metadata=models.Base.metadata, outbox_model=models.Outbox,
                                   inbox_model=models.ProcessedMessage, broker=broker)
    actors.register(runtime)
    scoring.register(runtime)
    facts.configure(settings.timezone)  # the scorecard facts' months are local months
    return runtime


def create_app(config: Settings | Mapping[str, Any] | None = None, *, runtime: ServiceRuntime | None = None) -> Flask:
    runtime = runtime or build_runtime(settings_from(config))
    blueprints = [*api.blueprints, *api_interviews.blueprints, *api_admin.blueprints, *api_scores.blueprints]
    return make_service_app(runtime, title="xinfang supervise_svc 督查督办", blueprints=blueprints,
                            description="Supervision: read model of cases, findings (督查件), escalation, interviews (约谈), scorecards.")
