"""assign_svc: the directory, routing (属地 + 归口), deadlines and case handling."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import dramatiq
from flask import Flask
from sqlalchemy import func, select

from assign_svc import actors, models
from assign_svc.api import LOGIN_PATH, auth_blp, cases_blp, units_blp
from assign_svc.directory import load_directory
from shared.config import Settings, settings_from
from shared.runtime import ServiceRuntime
from shared.web import make_service_app

NAME = "assign"


def build_runtime(settings: Settings, *, broker: dramatiq.Broker | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime.build(NAME, settings, metadata=models.Base.metadata, outbox_model=models.Outbox,
                                   inbox_model=models.ProcessedMessage, broker=broker)
    actors.register(runtime)
    return runtime


def bootstrap(runtime: ServiceRuntime) -> None:
    """After migrations: load the directory file when the directory is empty."""
    with runtime.uow() as session:
        if not session.scalar(select(func.count()).select_from(models.Unit)):
            path = runtime.settings.directory_file
            load_directory(session, Path(path) if path else None)


def create_app(config: Settings | Mapping[str, Any] | None = None, *, runtime: ServiceRuntime | None = None) -> Flask:
    runtime = runtime or build_runtime(settings_from(config))
    return make_service_app(runtime, title="xinfang assign_svc 交办与办理", blueprints=[auth_blp, cases_blp, units_blp],
                            description="Directory, routing, deadlines and the handling of cases.",
                            open_paths=(LOGIN_PATH,))
