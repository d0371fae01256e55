"""The ``xinfang`` command.

Embedded default:   ``xinfang up`` — everything in one process on one port.
Distributed roles:  ``xinfang serve SERVICE``, ``xinfang worker SERVICE``, ``xinfang scheduler``.
Operations:         ``xinfang migrate``, ``xinfang sweep``, ``xinfang clock …``, ``xinfang user create``.
"""
from __future__ import annotations

import contextlib
import gc
import importlib
import json
import logging
import signal
import sys
import threading
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from shared.auth import STAFF_ROLES
from shared import clock as shared_clock
from shared.config import SERVICES, Settings
from shared.observability import configure_logging

log = logging.getLogger("xinfang")

SERVICE = click.Choice(SERVICES)


def _settings() -> Settings:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return settings


@click.group()
def cli() -> None:
    """xinfang — 信访 intake, assignment, supervision and notices."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def up(host: str, port: int) -> None:
    """Run the whole system on the embedded default (SQLite + in-process broker)."""
    from waitress import create_server

    from shared.system import EmbeddedSystem

    settings = _settings()
    if settings.broker_url:
        raise click.UsageError("`xinfang up` is the embedded default; unset XINFANG_BROKER_URL "
                               "(use serve/worker/scheduler for the distributed mode)")
    _check_port(host, port)
    system = EmbeddedSystem(settings)
    system.start()
    try:
        server = create_server(system.wsgi, host=host, port=port, threads=8)
        base = f"http://{host}:{port}"
        click.echo(f"xinfang is up at {base}  (data: {settings.data_dir.resolve()})")
        for service in SERVICES:
            click.echo(f"  {service:10s} {base}/{service}/docs   health: {base}/{service}/healthz")
        _serve_until_stopped(server, "stopping: finishing in-flight work")
    finally:
        system.stop()
        click.echo("xinfang stopped")


@cli.command()
@click.argument("service", type=SERVICE)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn worker processes")
@click.option("--threads", default=4, show_default=True, type=int,
              help="threads per worker process; a process runs Python on one core at a time, so more threads "
                   "mostly wait for each other (on 2 cores, 8 instead of 4 cost intake ~15 % of its rate and "
                   "raised p99 by half: bench/intake/README.md); add workers, not threads, for more cores")
@click.option("--worker-connections", default=1000, show_default=True, type=click.IntRange(min=1),
              help="most connections one worker process holds at once; with long-lived keep-alive clients (a "
                   "gateway's pool, a county system's connection pool) set it to their number divided by --workers")
def serve(service: str, host: str, port: int, workers: int, threads: int, worker_connections: int) -> None:
    """Serve one service's HTTP API (distributed mode; gunicorn).

    The worker processes share one listening socket and whichever wakes first accepts a new connection, so
    a burst of keep-alive connections can land mostly on one of them (seen: all 32 of a load generator's on
    one worker of two, a third of the throughput, since a worker runs Python on one core at a time).
    ``--worker-connections`` caps what one worker holds: the others accept the rest."""
    from gunicorn.app.base import BaseApplication

    from shared.system import service_module

    from shared.observability import enable_multiprocess

    settings = _settings()
    if workers > 1:
        enable_multiprocess(str((settings.data_dir / "prometheus" / service).resolve()))

    class Application(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_connections", worker_connections)
            self.cfg.set("graceful_timeout", 30)

        def load(self):  # in each worker process, after fork
            module = service_module(service)
            runtime = module.build_runtime(settings)
            if settings.web_relay:  # else the service's `xinfang worker` processes publish its outbox
                runtime.relay.start()
            app = module.create_app(settings, runtime=runtime)
            # What start-up made (modules, schemas, code tables: ~120,000 objects for intake) stays for the
            # process's life: out of the cyclic collector's scans (the first full collection after start-up took
            # 61 ms with every thread waiting; after the freeze, 0).
            gc.freeze()
            return app

    Application().run()


def _run_worker(service: str, threads: int, metrics_port: int = 0) -> None:
    import dramatiq

    from shared.system import service_module

    settings = _settings()
    runtime = service_module(service).build_runtime(settings)
    if metrics_port:
        from prometheus_client import start_http_server

        # Actor and sweep metrics live in the worker process; Prometheus scrapes them here.
        start_http_server(metrics_port, registry=runtime.metrics.registry)
    worker = dramatiq.Worker(runtime.broker, queues={service}, worker_threads=threads)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    runtime.relay.start()
    worker.start()
    log.info("%s worker running (%d threads)", service, threads)
    done.wait()
    log.info("%s worker stopping", service)
    from shared.sweeps import SWEEP_TIME_LIMIT_MS

    worker.stop(timeout=SWEEP_TIME_LIMIT_MS)  # let the longest actor finish; compose grace exceeds it
    runtime.close()


@cli.command()
@click.argument("service", type=SERVICE)
@click.option("--processes", default=1, show_default=True, type=int)
@click.option("--threads", default=None, type=int, help="worker threads (default XINFANG_WORKER_THREADS)")
@click.option("--metrics-port", default=0, type=int, help="serve this process's Prometheus metrics on this port (0: off)")
def worker(service: str, processes: int, threads: int | None, metrics_port: int) -> None:
    """Run one service's Dramatiq worker and outbox relay (distributed mode)."""
    settings = _settings()
    if not settings.broker_url:
        raise click.UsageError("worker needs XINFANG_BROKER_URL (Redis); the embedded default is `xinfang up`")
    threads = threads or settings.worker_threads
    if processes <= 1:
        _run_worker(service, threads, metrics_port)
        return
    if metrics_port:
        raise click.UsageError("--metrics-port needs --processes 1 (one port per process)")
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_run_worker, args=(service, threads)) for _ in range(processes)]
    for proc in procs:
        proc.start()
    signal.signal(signal.SIGTERM, lambda *_: [p.terminate() for p in procs])
    for proc in procs:
        proc.join()


@cli.command()
def scheduler() -> None:
    """Send the periodic sweep messages (exactly one per deployment)."""
    from shared.broker import make_broker
    from shared.system import Scheduler

    settings = _settings()
    if not settings.broker_url:
        raise click.UsageError("scheduler needs XINFANG_BROKER_URL; `xinfang up` runs its own")
    sched = Scheduler(make_broker(settings), interval=settings.sweep_interval_seconds)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    sched.start()
    log.info("scheduler running every %ss", settings.sweep_interval_seconds)
    done.wait()
    sched.stop()


@cli.command()
@click.argument("service", type=SERVICE, required=False)
def migrate(service: str | None) -> None:
    """Upgrade the databases (all services, or one) to the newest schema."""
    from shared.system import migrate as do_migrate

    do_migrate(_settings(), [service] if service else SERVICES)
    click.echo("migrated: " + ", ".join([service] if service else SERVICES))


@cli.command()
@click.argument("service", type=SERVICE, required=False)
def sweep(service: str | None) -> None:
    """Run the periodic jobs now (all services, or one), in this process."""
    from shared.broker import make_broker
    from shared.sweeps import run_sweeps
    from shared.system import service_module

    settings = _settings()
    broker = make_broker(settings.replace(broker_url=""))  # sweeps write outboxes; relays publish later
    for name in [service] if service else SERVICES:
        runtime = service_module(name).build_runtime(settings, broker=broker)
        click.echo(f"{name}: {json.dumps(run_sweeps(runtime), ensure_ascii=False, default=str)}")
        runtime.engine.dispose()


@cli.group()
def clock() -> None:
    """Show or move the system clock (moving it needs XINFANG_CLOCK_CONTROL=1)."""


def _clock():
    from shared import clock as clock_mod

    return clock_mod.configure(_settings())


@clock.command("show")
def clock_show() -> None:
    c = _clock()
    click.echo(f"{c.now().isoformat()}  (control {'enabled' if c.controllable else 'disabled'})")


def _guard(action):
    from shared.clock import ClockControlDisabled

    try:
        return action()
    except ClockControlDisabled as exc:
        raise click.ClickException(str(exc)) from None


@clock.command("set")
@click.argument("instant")
@click.option("--frozen", is_flag=True, help="stop the clock at INSTANT instead of letting it run on")
def clock_set(instant: str, frozen: bool) -> None:
    """Set the clock to INSTANT (ISO 8601; without an offset it is read as Asia/Shanghai)."""
    from zoneinfo import ZoneInfo

    when = datetime.fromisoformat(instant)
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(_settings().timezone))
    click.echo(_guard(lambda: _clock().set(when, frozen=frozen)).isoformat())


@clock.command("advance")
@click.option("--days", default=0.0, type=float)
@click.option("--hours", default=0.0, type=float)
@click.option("--minutes", default=0.0, type=float)
def clock_advance(days: float, hours: float, minutes: float) -> None:
    """Move the clock forward."""
    delta = timedelta(days=days, hours=hours, minutes=minutes)
    click.echo(_guard(lambda: _clock().advance(delta)).isoformat())


@cli.group()
def user() -> None:
    """Staff accounts (kept by assign_svc)."""


@contextlib.contextmanager
def _service_session(service: str):
    """A transaction on one service's database, for operator commands."""
    from dramatiq.brokers.stub import StubBroker

    from shared.system import service_module

    runtime = service_module(service).build_runtime(_settings(), broker=StubBroker())
    try:
        with runtime.uow() as session:
            yield session
    finally:
        runtime.engine.dispose()


@user.command("create")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(STAFF_ROLES))
@click.option("--jurisdiction", default="000000", show_default=True, help="region code of the subtree the user may see")
@click.option("--unit", "unit_id", default=None, help="the user's unit id in the directory")
@click.option("--name", "display_name", default="")
@click.password_option(help="at least 10 characters")
def user_create(username, role, jurisdiction, unit_id, display_name, password) -> None:
    """Create a staff account (the first admin, for instance)."""
    users = importlib.import_module("assign_svc.users")
    try:
        with _service_session("assign") as session:
            created = users.create_user(session, username=username, password=password, role=role,
                                        jurisdiction=jurisdiction, unit_id=unit_id, display_name=display_name)
            click.echo(f"created {created.role} {created.username} ({created.id}), jurisdiction {created.jurisdiction}")
    except users.UserError as exc:
        raise click.BadParameter(exc.message, param_hint=f"--{exc.field.replace('_id', '')}") from None


@cli.group()
def apikey() -> None:
    """County systems' API keys (kept by intake_svc)."""


@apikey.command("create")
@click.option("--name", required=True, help="who holds the key, e.g. 宛城区信访局登记系统")
@click.option("--system", required=True, help="the registering system id its petitions carry")
@click.option("--jurisdiction", required=True, help="region code: the key may only touch petitions inside it")
@click.option("--rate-limit", default=None, help="e.g. 300/minute (default XINFANG_RATE_LIMIT)")
def apikey_create(name, system, jurisdiction, rate_limit) -> None:
    """Create a key; its secret is printed once and stored only as a hash."""
    keys = importlib.import_module("intake_svc.apikeys")
    if rate_limit:
        from limits import parse

        try:
            parse(rate_limit)
        except ValueError:
            raise click.BadParameter("like 300/minute or 10/second", param_hint="--rate-limit") from None
    try:
        with _service_session("intake") as session:
            client, secret = keys.create_key(session, name=name, system=system, jurisdiction=jurisdiction,
                                             rate_limit=rate_limit)
            click.echo(f"key {client.key_prefix} for {client.system} (jurisdiction {client.jurisdiction}):")
            click.echo(secret)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@apikey.command("revoke")
@click.argument("key_id")
def apikey_revoke(key_id) -> None:
    """Revoke a key by its id or its short prefix."""
    keys = importlib.import_module("intake_svc.apikeys")
    with _service_session("intake") as session:
        client = keys.revoke_key(session, key_id)
        if client is None:
            raise click.ClickException(f"no key {key_id}")
        click.echo(f"revoked {client.key_prefix} ({client.system}) at {client.revoked_at.isoformat()}")


@apikey.command("list")
def apikey_list() -> None:
    """Keys with their jurisdiction and state (never the secret)."""
    from sqlalchemy import select

    models = importlib.import_module("intake_svc.models")
    with _service_session("intake") as session:
        for c in session.scalars(select(models.ApiClient).order_by(models.ApiClient.created_at)):
            state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "active"
            click.echo(f"{c.key_prefix}  {c.system:20s} {c.jurisdiction}  {state}  {c.name}")


@cli.command("import-ledger")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--system", default=None, help="登记系统 for rows that leave it empty")
@click.option("--jurisdiction", default="000000", show_default=True,
              help="region code: rows outside it fail (000000: everywhere)")
@click.option("--registrar", default="ledger-import", show_default=True, help="recorded as the petitions' registrar")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False), default=None,
              help="where to write the error report (csv); default FILE's name + .errors.csv, when there are errors")
def import_ledger(file, system, jurisdiction, registrar, errors_path) -> None:
    """Import a legacy ledger (台账, xlsx or csv): valid rows registered, the rest in an error report.

    Exit code 0 when the import ran (even with bad rows), 2 when the file cannot be imported."""
    from pathlib import Path

    from dramatiq.brokers.stub import StubBroker
    from tqdm import tqdm

    from shared.auth import Principal
    from shared.regions import is_region_code
    from shared.system import service_module

    ledger = importlib.import_module("intake_svc.imports.ledger")
    report = importlib.import_module("intake_svc.imports.report")
    if set(jurisdiction) != {"0"} and not is_region_code(jurisdiction):
        raise click.BadParameter("a 6- or 12-digit region code", param_hint="--jurisdiction")
    path = Path(file)
    principal = Principal(user_id=f"cli:{registrar}", username=registrar, role="registrar", jurisdiction=jurisdiction)
    runtime = service_module("intake").build_runtime(_settings(), broker=StubBroker())
    bars = []

    def progress(total: int):  # called once the file is read and its rows counted
        bars.append(tqdm(total=total, unit="row", desc=path.name, file=sys.stderr, dynamic_ncols=True))
        return bars[0].update

    try:
        summary = ledger.run_import(runtime, content=path.read_bytes(), file_name=path.name, principal=principal,
                                    default_system=system, source="cli", progress=progress)
        errors = ledger.error_report(runtime, summary["id"])
    except ledger.LedgerFileError as exc:
        click.echo(f"{path.name}: not imported: {exc.message}", err=True)
        raise click.exceptions.Exit(2) from None
    finally:
        for bar in bars:
            bar.close()
        runtime.engine.dispose()
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{path.name}: {summary['message']}  [import {summary['id']}]")
    if errors or errors_path:
        target = Path(errors_path) if errors_path else path.with_name(report.report_name(path.name, "csv"))
        target.write_bytes(report.errors_csv(errors))
        click.echo(f"error report: {target}")


def _params(seed: int, days: int, per_day: float):
    from shared.simulator.workload import Params

    return Params(seed=seed, days=days, per_day=per_day)


@cli.command()
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 366))
@click.option("--per-day", default=12.0, show_default=True, type=click.FloatRange(0.5, 5000), help="petitions per day")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="data folder (emptied first); default <XINFANG_DATA_DIR>/simulate")
@click.option("--check/--no-check", default=True, show_default=True,
              help="compare what the simulator expects each check to catch with the findings reported")
@click.option("--expected", "expected_path", type=click.Path(path_type=Path), default=None,
              help="write the expected outcome (JSON) here")
def simulate(seed: int, days: int, per_day: float, data_dir: Path | None, check: bool, expected_path) -> None:
    """Play days of a city's petitions through the system (embedded default) and check the five checks."""
    from tqdm import tqdm

    from shared.simulator import demo

    settings = _settings()
    settings = demo.settings_for_demo(settings, data_dir or settings.data_dir / "simulate")
    demo.quiet_logs()
    bar = tqdm(total=days, unit="天", desc="模拟")
    try:
        _, sim = demo.simulate(settings, _params(seed, days, per_day), progress=lambda d, n: bar.update(1))
    except demo.ForeignData as exc:
        raise click.UsageError(str(exc)) from None
    bar.close()
    click.echo(f"seed {seed}, {days} days from {sim.start}:")
    demo.print_summary(click.echo, sim)
    expected = sim.expected()
    if expected_path:
        expected_path.write_text(json.dumps({k: sorted(v) for k, v in expected.items()}, ensure_ascii=False, indent=2))
    if check:
        ok, lines = sim.check()
        click.echo("expected vs reported:")
        for line in lines:
            click.echo("  " + line)
        if not ok:
            raise SystemExit(1)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--days", default=30, show_default=True, type=click.IntRange(1, 92))
@click.option("--per-day", default=10.0, show_default=True, type=click.FloatRange(0.5, 500))
@click.option("--fresh", is_flag=True, help="forget an earlier demo and play the month again")
def demo(host: str, port: int, seed: int, days: int, per_day: float, fresh: bool) -> None:
    """Play a month of a city's petitions at accelerated time, then keep the system running."""
    from tqdm import tqdm
    from waitress import create_server

    from shared.simulator import demo as demo_mod

    settings = demo_mod.settings_for_demo(_settings(), None)
    _check_port(host, port)  # before the month is played, not after
    demo_mod.quiet_logs()
    earlier = None if fresh else demo_mod.read_marker(settings)
    if earlier is None:
        click.echo(f"演示：模拟南阳市 {days} 天的信访业务（种子 {seed}），数据目录 {settings.data_dir.resolve()}")
        bar = tqdm(total=days, unit="天", desc="模拟")
        try:
            system, sim = demo_mod.simulate(settings, _params(seed, days, per_day), keep_running=True,
                                            progress=lambda d, n: bar.update(1))
        except demo_mod.ForeignData as exc:
            raise click.UsageError(str(exc)) from None
        bar.close()
        demo_mod.print_summary(click.echo, sim)
        demo_mod.write_marker(settings, sim)
        api_keys = sim.keys
    else:
        from shared.system import EmbeddedSystem

        click.echo(f"演示数据已存在（{settings.data_dir.resolve()}，种子 {earlier['seed']}）；--fresh 重新模拟")
        shared_clock.configure(settings)
        system = EmbeddedSystem(settings)
        system.start()
        api_keys = earlier["api_keys"]
    shared_clock.current().reset()  # back to real time: the system goes on live from here
    configure_logging(settings.log_level)
    logins = demo_mod.create_demo_logins(system)
    month = (shared_clock.now() - timedelta(days=1)).astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m")
    try:
        server = create_server(system.wsgi, host=host, port=port, threads=8)
        base = f"http://{host}:{port}"
        click.echo(f"\nxinfang 演示系统已启动: {base}")
        for label, url in demo_mod.demo_urls(base, month):
            click.echo(f"  {label:24s} {url}")
        click.echo(f"演示账号（密码 {demo_mod.DEMO_PASSWORD}，登录: POST {base}/assign/api/v1/auth/login）:")
        for username, role, name in logins:
            click.echo(f"  {username:24s} {role:10s} {name}")
        click.echo("县级系统 API Key（X-API-Key）:")
        for region, key in sorted(api_keys.items()):
            click.echo(f"  {region}  {key}")
        _serve_until_stopped(server, "stopping")
    finally:
        system.stop()


def _check_port(host: str, port: int) -> None:
    """A clear error before anything starts when ``host:port`` cannot be listened on (another ``xinfang up``
    or ``demo`` holds it, say), instead of a traceback once the system is up or the demo month played."""
    import socket

    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise click.UsageError(f"--host {host}: {exc}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress does
            try:
                sock.bind(address)
            except OSError as exc:
                raise click.UsageError(f"无法在 {host}:{port} 上监听（{exc.strerror}）：端口可能已被另一个 xinfang up 或 "
                                       f"xinfang demo 占用；停止它，或用 --port 换一个端口") from None


def _serve_until_stopped(server, stopping: str) -> None:
    """waitress's ``server.run()`` until Ctrl-C or SIGTERM, then ``stopping`` is printed, the server closed and
    its in-flight requests finished (10 s at most).  The signals only set a flag that the serving loop reads
    between its polls (each at most ``asyncore_loop_timeout``, 1 s): a KeyboardInterrupt raised by a signal at
    an arbitrary point of the loop (Python's default for SIGINT) can leave one of the server's locks held, and
    the shutdown after it then waits for ever."""
    from waitress.server import MultiSocketServer

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    # (a host name with several addresses, such as localhost, gives a MultiSocketServer: its map is ``map``)
    channels = server.map if isinstance(server, MultiSocketServer) else server._map
    try:
        while not stop.is_set():
            server.asyncore.loop(timeout=server.adj.asyncore_loop_timeout, map=channels,
                                 use_poll=server.adj.asyncore_use_poll, count=1)
        click.echo(stopping)
    finally:
        server.close()
        server.task_dispatcher.shutdown(cancel_pending=False, timeout=10)


def main() -> None:
    cli(prog_name="xinfang")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
