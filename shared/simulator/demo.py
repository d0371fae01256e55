"""``xinfang simulate`` and ``xinfang demo``: run the simulator on an embedded system.

The demo loads the shipped demo directory (assign's bootstrap does that on a fresh data
folder), creates the demo logins and API key, plays a month at accelerated time, returns
the clock to real time and leaves the system serving, printing the URLs to open.
"""
from __future__ import annotations

import importlib
import json
import shutil
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Callable

from shared import clock
from shared.config import Settings
from shared.simulator.driver import Simulation
from shared.simulator.workload import Params

#: Demo logins (演示账号): username, role, jurisdiction, unit id, name.  One password for all.
DEMO_PASSWORD = "xinfang-demo-2026"
DEMO_USERS = (
    ("demo-admin", "admin", "000000", None, "系统管理员（演示）"),
    ("demo-city-supervisor", "supervisor", "411300", "411300-xfj", "市信访局督查员（演示）"),
    ("demo-county-supervisor", "supervisor", "411302", "411302-xfj", "宛城区信访局督查员（演示）"),
    ("demo-registrar", "registrar", "411302", "411302-xfj", "宛城区信访局登记员（演示）"),
)
MARKER = "demo.json"
#: Written into every folder a simulation fills; only such a folder is ever emptied by a new run.
OWNED = ".xinfang-simulation"


class ForeignData(RuntimeError):
    """The data folder holds something a simulation did not write (a live system's data, say)."""


def simulate(settings: Settings, params: Params, *, start: date | None = None, fresh: bool = True,
             progress: Callable[[int, int], None] | None = None, keep_running: bool = False):
    """Run ``params`` on an embedded system in ``settings.data_dir``; returns (system, simulation).

    The system is stopped afterwards unless ``keep_running``.
    """
    from shared.system import EmbeddedSystem

    folder = settings.data_dir
    if fresh and folder.exists() and any(folder.iterdir()):
        if not (folder / OWNED).exists():
            raise ForeignData(f"{folder} 中有不是模拟写入的数据，不会清空；请指定空目录或新目录 "
                              f"(holds data no simulation wrote)")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNED).write_text("filled by xinfang simulate / demo; emptied by the next run\n")
    clock.configure(settings)
    system = EmbeddedSystem(settings)
    system.start()
    try:
        sim = Simulation(system, params, start=start, progress=progress)
        sim.run()
    except BaseException:
        system.stop()
        raise
    if not keep_running:
        system.stop()
    return system, sim


def create_demo_logins(system) -> list[tuple[str, str, str]]:
    users = importlib.import_module("assign_svc.users")
    created = []
    with system.runtimes["assign"].uow() as session:
        for username, role, jurisdiction, unit_id, name in DEMO_USERS:
            try:
                users.create_user(session, username=username, password=DEMO_PASSWORD, role=role,
                                  jurisdiction=jurisdiction, unit_id=unit_id, display_name=name)
            except users.UserError:
                pass  # already there (a second demo run on the same folder)
            created.append((username, role, name))
    return created


def write_marker(settings: Settings, sim: Simulation) -> None:
    marker = {"seed": sim.params.seed, "days": sim.params.days, "start": sim.start.isoformat(),
              "summary": asdict(sim.summary), "api_keys": sim.keys}
    (settings.data_dir / MARKER).write_text(json.dumps(marker, ensure_ascii=False, indent=2))


def read_marker(settings: Settings) -> dict | None:
    path = settings.data_dir / MARKER
    return json.loads(path.read_text()) if path.exists() else None


def print_summary(echo: Callable[[str], None], sim: Simulation) -> None:
    s = sim.summary
    echo(f"  信访件登记 {s.registered}（拒收 {s.rejected}），交办/转送 {s.routed}，涉法涉诉分流 {s.diverted}")
    echo(f"  办理动作 {s.actions}（被拒 {s.action_failures}），办结 {s.closed}，回流再访 {s.reflows_registered}")
    for line in sim.extra_summary():
        echo("  " + line)


def demo_urls(base: str, month: str) -> list[tuple[str, str]]:
    return [
        ("登记 intake API 文档", f"{base}/intake/docs"),
        ("交办 assign API 文档", f"{base}/assign/docs"),
        ("督查 supervise API 文档", f"{base}/supervise/docs"),
        ("通知 notify API 文档", f"{base}/notify/docs"),
        ("收件箱（网页）", f"{base}/notify/inbox"),
        ("未签收通知一览（网页）", f"{base}/notify/unacknowledged"),
        ("督查件 findings", f"{base}/supervise/api/v1/findings"),
        (f"{month} 三率三色", f"{base}/supervise/api/v1/scorecards/{month}"),
    ]


def quiet_logs() -> None:
    """While a simulation plays, the console shows its progress bar and summary, not every log line
    (the clock moving is logged as a warning in production, by design; here it moves three times a day)."""
    import logging

    logging.getLogger().setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.ERROR)


def settings_for_demo(settings: Settings, data_dir: Path | None) -> Settings:
    if settings.env == "production":
        raise RuntimeError("the demo moves the clock; it never runs with XINFANG_ENV=production")
    return settings.replace(clock_control=True, data_dir=data_dir or settings.data_dir / "demo")
