"""Assembling services into processes: the embedded default and the distributed roles.

Services are loaded by module name (``<service>_svc.app``), never imported
statically, so ``shared`` stays below the services.  Each ``app`` module
offers ``build_runtime(settings, broker=None)``, ``create_app(config, runtime=)``
and optionally ``bootstrap(runtime)`` (run after migrations).
"""
from __future__ import annotations

import importlib
import logging
import threading
from types import ModuleType
from typing import Callable, Iterable

import dramatiq
from dramatiq.brokers.stub import StubBroker
from flask import Flask

from shared.broker import make_broker
from shared.config import SERVICES, Settings
from shared.runtime import ServiceRuntime
from shared.sweeps import sweep_actor_name

log = logging.getLogger(__name__)


def service_module(service: str) -> ModuleType:
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    return importlib.import_module(f"{service}_svc.app")


def migrate(settings: Settings, services: Iterable[str] = SERVICES) -> None:
    """Upgrade each service's database to head and run its bootstrap (e.g. load the directory)."""
    from shared.migrations import upgrade

    for service in services:
        upgrade(service, settings)
        module = service_module(service)
        if hasattr(module, "bootstrap"):
            runtime = module.build_runtime(settings, broker=StubBroker())
            try:
                module.bootstrap(runtime)
            finally:
                runtime.engine.dispose()
        log.info("%s: database at head", service)


class PrefixDispatcher:
    """One WSGI app for all services: routes by the first path segment, path unchanged."""

    def __init__(self, apps: dict[str, Flask]) -> None:
        self.apps = apps

    def __call__(self, environ, start_response):
        segment = environ.get("PATH_INFO", "/").lstrip("/").split("/", 1)[0]
        app = self.apps.get(segment)
        if app is None:
            body = ('{"code": 404, "status": "Not Found", "message": "no service at this path; '
                    'try /intake, /assign, /supervise or /notify"}').encode()
            start_response("404 Not Found", [("Content-Type", "application/json"),
                                             ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)


class Scheduler:
    """Sends each service's sweep message every ``interval`` seconds (one scheduler per deployment)."""

    def __init__(self, broker: dramatiq.Broker, *, interval: float, services: Iterable[str] = SERVICES) -> None:
        self.broker = broker
        self.interval = interval
        self.services = tuple(services)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        for service in self.services:
            self.broker.enqueue(dramatiq.Message(queue_name=service, actor_name=sweep_actor_name(service),
                                                 args=(), kwargs={}, options={}))

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("scheduler tick failed; next tick in %ss", self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)


class EmbeddedSystem:
    """All four services, their workers, outbox relays and the scheduler in one process.

    SQLite files in the data folder and the in-process broker: nothing else to
    install.  The outbox is the durable store: a restart re-publishes whatever
    was accepted but not yet handled.
    """

    def __init__(self, settings: Settings, *, migrate_first: bool = True,
                 on_runtime: Callable[[ServiceRuntime], None] | None = None) -> None:
        if settings.broker_url:
            raise ValueError("the embedded system uses the in-process broker; unset XINFANG_BROKER_URL")
        self.settings = settings
        if migrate_first:
            migrate(settings)
        self.broker = make_broker(settings)
        self.runtimes: dict[str, ServiceRuntime] = {}
        self.apps: dict[str, Flask] = {}
        for service in SERVICES:
            module = service_module(service)
            runtime = module.build_runtime(settings, broker=self.broker)
            if on_runtime:
                on_runtime(runtime)
            self.runtimes[service] = runtime
            self.apps[service] = module.create_app(settings, runtime=runtime)
        self.wsgi = PrefixDispatcher(self.apps)
        # worker_timeout: how long an idle consumer waits on its in-memory queue; short = quick stop.
        self.worker = dramatiq.Worker(self.broker, worker_threads=settings.worker_threads, worker_timeout=100)
        self.scheduler = Scheduler(self.broker, interval=settings.sweep_interval_seconds)
        self.started = False

    def start(self) -> None:
        self.worker.start()
        for runtime in self.runtimes.values():
            runtime.relay.start()
        self.scheduler.start()
        self.started = True

    def stop(self) -> None:
        """Stop cleanly: no new sweeps, publish what is pending, let workers finish, close."""
        self.scheduler.stop()
        for runtime in self.runtimes.values():
            runtime.relay.stop()
        self.worker.stop(timeout=30_000)
        for runtime in self.runtimes.values():
            runtime.engine.dispose()
        self.started = False

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every outbox is published and every queue is empty (tests, demo)."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = sum(r.relay.drain() for r in self.runtimes.values())
            for service in SERVICES:
                self.broker.join(service, timeout=int(max(1, deadline - time.monotonic()) * 1000), fail_fast=False)
            self.worker.join()
            if (pending == 0 and not any(r.relay.drain() for r in self.runtimes.values())
                    and not self._messages_unfinished()):
                return
        raise TimeoutError("the system did not settle in time")

    def _messages_unfinished(self) -> int:
        """Messages the in-process broker holds or a worker thread is handling (every queue and delay queue).

        The relay threads run while ``settle`` waits: a consumer's outbox rows can be published by its relay
        thread after ``settle`` joined the queue they go to, and ``drain`` then finds nothing pending (seen:
        a simulated day's 交办 handled by intake after the simulator had moved its clock on)."""
        return sum(queue.unfinished_tasks for queue in getattr(self.broker, "queues", {}).values())
