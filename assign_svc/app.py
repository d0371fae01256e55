"""assign_svc: the directory, routing (属地 + 归口), deadlines and case handling."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import click
import dramatiq
from flask import Flask
from sqlalchemy import func, select

from assign_svc import actors, directory, models, notices, recompute, rules, versions
from assign_svc.api import BLUEPRINTS, LOGIN_PATH
from shared.config import Settings, settings_from
from shared.runtime import ServiceRuntime, SweepJob
from shared.web import make_service_app

NAME = "assign"


def build_runtime(settings: Settings, *, broker: dramatiq.Broker | None = None) -> ServiceRuntime:
    runtime = ServiceRuntime.build(NAME, settings, metadata=models.Base.metadata, outbox_model=models.Outbox,
                                   inbox_model=models.ProcessedMessage, broker=broker)
    runtime.sweeps.append(SweepJob("deadline_warnings", notices.warning_sweep))
    actors.register(runtime)
    return runtime


def bootstrap(runtime: ServiceRuntime) -> None:
    """After migrations: load the directory file, routing rules and deadline policies where empty."""
    with runtime.uow() as session:
        if not versions.current_versions(session)["directory"]:
            path = runtime.settings.directory_file
            directory.load_file(session, runtime, Path(path) if path else None)
        if not session.scalar(select(func.count()).select_from(models.RoutingRuleRow)):
            rules.load_routing_file(session)
        if not session.scalar(select(func.count()).select_from(models.DeadlinePolicyRow)):
            rules.load_deadlines_file(session)


def create_app(config: Settings | Mapping[str, Any] | None = None, *, runtime: ServiceRuntime | None = None) -> Flask:
    runtime = runtime or build_runtime(settings_from(config))
    app = make_service_app(runtime, title="xinfang assign_svc 交办与办理", blueprints=BLUEPRINTS,
                           description="Directory, routing, deadlines and the handling of cases.",
                           open_paths=(LOGIN_PATH,))

    @app.cli.command("recompute-deadlines")
    @click.option("--repick", is_flag=True, help="apply the deadline policies now in force to open stages")
    def recompute_deadlines(repick: bool) -> None:
        """Recompute due_at / warn_at of every open stage (after a calendar or policy change)."""
        with runtime.uow() as session:
            click.echo(recompute.recompute_open_stages(session, runtime, repick=repick))

    return app
