"""intake_svc: the front door where county systems register petitions (信访件登记)."""
from __future__ import annotations

from typing import Any, Mapping

import dramatiq
from flask import Flask

from intake_svc import actors, models, open311, ratelimit
from intake_svc.api import blp
from intake_svc.apikeys import make_resolver
from intake_svc.detection import warm_up
from intake_svc.imports.api import blp as imports_blp
from intake_svc.pii import PiiVault
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
    warm_up()  # the repeat matcher's tokenizer, before the first registration needs it
    app = make_service_app(runtime, title="xinfang intake_svc 信访件登记", blueprints=[blp, imports_blp, open311.blp],
                           description=DESCRIPTION, extra_security={"apiKey": API_KEY_SCHEME},
                           open_paths=open311.open_paths())
    open311.install(app)
    app.extensions["xinfang_pii"] = PiiVault(runtime.settings)
    app.config["XINFANG_API_KEY_RESOLVER"] = make_resolver(runtime)
    ratelimit.install(app, runtime.settings)
    return app


DESCRIPTION = """Registration of petitions (信访件) by county systems and registrars.

County systems authenticate with an API key (header `X-API-Key`, created with
`xinfang apikey create`); staff with a bearer token. Retries are safe: send an
`Idempotency-Key` header, and/or your own case number as `county_no`.
Personal data (identity numbers, phones) is masked in every response."""

API_KEY_SCHEME = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
