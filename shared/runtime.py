"""The runtime of one service in one process: settings, database, broker, outbox relay.

Built by the service's ``create_app`` (web) or by the worker/embedded
supervisor; shared by the Flask views and the Dramatiq actors of that service,
so both reach the same session factory and relay.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Iterable, Iterator

import dramatiq
from sqlalchemy import Engine, delete, text
from sqlalchemy.orm import Session, sessionmaker

from shared import clock as clock_mod
from shared.broker import confirm_middleware, make_broker
from shared.config import Settings
from shared.db import create_db_engine, session_factory, unit_of_work
from shared.observability import ServiceMetrics, metrics_for
from shared.outbox import OutboxRelay, after_commit_kick, claim_message, emit, emit_many

log = logging.getLogger(__name__)


@dataclass
class SweepJob:
    """A periodic job of a service (run by the scheduler and by ``xinfang sweep``)."""

    name: str
    run: Callable[["ServiceRuntime"], Any]


@dataclass
class ServiceRuntime:
    name: str
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    metadata: Any
    outbox_model: type
    inbox_model: type
    broker: dramatiq.Broker
    relay: OutboxRelay
    metrics: ServiceMetrics
    sweeps: list[SweepJob] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, name: str, settings: Settings, *, metadata: Any, outbox_model: type,
              inbox_model: type, broker: dramatiq.Broker | None = None) -> "ServiceRuntime":
        clock_mod.configure(settings)
        engine = create_db_engine(settings.database_url(name))
        sessions = session_factory(engine)
        broker = broker or make_broker(settings)
        relay = OutboxRelay(service=name, sessions=sessions, outbox_model=outbox_model, broker=broker,
                            poll_seconds=settings.outbox_poll_seconds,
                            confirm_on_ack=not settings.distributed)
        runtime = cls(name=name, settings=settings, engine=engine, sessions=sessions,
                      read_sessions=session_factory(engine, readonly=True), metadata=metadata,
                      outbox_model=outbox_model, inbox_model=inbox_model, broker=broker, relay=relay,
                      metrics=metrics_for(name))
        after_commit_kick(sessions, lambda: runtime.relay)
        runtime.metrics.watch_outbox(relay.backlog)
        confirmer = confirm_middleware(broker)
        if confirmer is not None:
            confirmer.confirmers[name] = relay.confirm
        runtime.sweeps.append(SweepJob("prune_messages", prune_messages))
        return runtime

    # -- transactions and messages
    @contextlib.contextmanager
    def uow(self) -> Iterator[Session]:
        with unit_of_work(self.sessions) as session:
            yield session

    def emit(self, session: Session, payload: Any) -> str:
        return emit(session, self.outbox_model, payload, producer=self.name)

    def emit_many(self, session: Session, payloads: Iterable[Any]) -> list[str]:
        """``emit`` for each payload in order, all the outbox rows in one INSERT; the event ids."""
        return emit_many(session, self.outbox_model, payloads, producer=self.name)

    def claim(self, session: Session, message_id: str, actor_name: str) -> bool:
        return claim_message(session, self.inbox_model, message_id, actor_name)

    # -- health
    def check_database(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def check_broker(self) -> None:
        client = getattr(self.broker, "client", None)
        if client is not None:
            client.ping()

    def create_schema(self) -> None:
        """Create tables directly (tests); production uses ``xinfang migrate``."""
        self.metadata.create_all(self.engine)

    def close(self) -> None:
        self.relay.stop()
        self.engine.dispose()


def prune_messages(runtime: ServiceRuntime) -> dict[str, int]:
    """Forget finished outbox rows and inbox ids older than the retention period."""
    keep = timedelta(days=runtime.settings.retention_days)
    pruned_outbox = runtime.relay.prune(older_than=keep)
    cutoff = clock_mod.now() - keep
    with runtime.uow() as session:
        pruned_inbox = session.execute(delete(runtime.inbox_model)
                                       .where(runtime.inbox_model.processed_at < cutoff)).rowcount
    return {"outbox": pruned_outbox, "inbox": pruned_inbox}
