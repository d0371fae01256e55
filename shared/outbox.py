"""The transactional outbox (发件箱) and the inbox of processed message ids (收件去重).

A service writes its state change and the messages announcing it in one
transaction (``emit``).  A relay (``OutboxRelay``) later publishes pending rows
to the broker and marks them published; the outbox row id is the Dramatiq
message id, so a re-publication after a crash carries the same id and the
consumer's inbox (``claim_message``) turns it into a no-op.

In the embedded default the broker lives in memory, so "published" is not yet
"safe": rows stay ``published`` until the consuming actor has finished
(``done``), and a restart re-publishes every row that is not ``done``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Iterator

import dramatiq
from sqlalchemy import Index, Integer, String, Text, bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Mapped, Session, declared_attr, mapped_column, sessionmaker

from shared import clock, jsoncodec
from shared.broker import enqueue_many
from shared.bulk import bulk_insert
from shared.contracts import ROUTES, dump_envelope, envelope_for
from shared.db import new_id, unit_of_work
from shared.observability import get_correlation_id

log = logging.getLogger(__name__)

PENDING, PUBLISHED, DONE, DEAD = "pending", "published", "done", "dead"

#: Session key of an open ``emitting_together`` block: (outbox model, [(payload, event id)]).
EMIT_BATCH = "xinfang_emit_batch"
#: Session flag set by ``emit``: the commit should wake the relay.
OUTBOX_WRITTEN = "xinfang_outbox_written"
#: Under load (commits arrived while the relay was draining) it waits this long after a wake-up so
#: that one transaction carries many rows; otherwise it publishes at once.  Part of a batch's cost is
#: fixed (a transaction and a Redis pipeline): per registration 1.08 ms of CPU at 2 rows a batch, 0.22 at
#: 32 (bench/intake/cpu.py --relay-batches); in instructions (``--callgrind``) 736 k at 24 rows, 626 k at
#: 48, 596 k at 96.  A web worker takes a little over 200 registrations a second under load, so 100 ms
#: gathers ~45 rows (50 ms: ~22, 2 % more CPU per registration in all); a message is at most that much later.
COALESCE_SECONDS = 0.1
#: The relay's transaction settings on PostgreSQL, in one statement (see ``OutboxRelay.publish_pending``): its
#: marks need not wait for the WAL flush, and its claim reads the pending index in order (an index scan), never
#: through a bitmap.
_RELAY_SETTINGS = text("SELECT set_config('synchronous_commit', 'off', true), "
                       "set_config('enable_bitmapscan', 'off', true)")
#: Message ids per UPDATE when the relay writes a batch of confirmations.
CONFIRM_CHUNK = 500
#: From this many rows ``emit_many`` writes them with COPY on PostgreSQL (below, a multi-row INSERT is cheaper).
COPY_FROM = 32


class OutboxMixin:
    """Include in each service's metadata: ``class Outbox(OutboxMixin, Base): pass``."""

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # = Dramatiq message_id
    event_id: Mapped[str] = mapped_column(String(32), index=True)
    message_type: Mapped[str] = mapped_column(String(64))
    queue_name: Mapped[str] = mapped_column(String(32))
    actor_name: Mapped[str] = mapped_column(String(96))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    @declared_attr.directive
    def __table_args__(cls):
        # Partial index: the relay only looks at pending rows, and they are few at any moment;
        # published and done rows (the vast majority) stay out of it.
        return (Index("ix_outbox_pending", "created_at",
                      postgresql_where=text("status = 'pending'"), sqlite_where=text("status = 'pending'")),
                Index("ix_outbox_published_at", "published_at"))


class InboxMixin:
    """Processed message ids, written in the same transaction as the effects."""

    __tablename__ = "processed_messages"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    actor_name: Mapped[str] = mapped_column(String(96))
    processed_at: Mapped[datetime] = mapped_column(index=True)


def _new_ids(count: int) -> list[str]:
    """``count`` of ``shared.db.new_id`` (random UUID4 as 32 hex characters) from one ``os.urandom`` call:
    the version (4) and variant (RFC 4122) bits set as ``uuid.uuid4`` sets them."""
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = bytes((b & 0x0F) | 0x40 for b in raw[6::16])
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])
    text = raw.hex()
    return [text[i:i + 32] for i in range(0, 32 * count, 32)]


def _outbox_rows(payloads: Iterable[Any], *, producer: str,
                 event_ids_given: list[str] | None = None) -> tuple[list[dict], list[str]]:
    """The outbox rows of ``payloads`` (one envelope each, one row per route) and their event ids
    (``event_ids_given``: ids drawn earlier, one per payload)."""
    now, correlation_id = clock.now(), get_correlation_id()
    rows: list[dict] = []
    event_ids: list[str] = []
    payloads = list(payloads)
    ids = iter(_new_ids(len(payloads) * 2))  # an event id and one row id per payload; more are drawn when used up
    given = iter(event_ids_given) if event_ids_given is not None else None
    for payload in payloads:
        event_id = next(given) if given is not None else (next(ids, None) or new_id())
        envelope = envelope_for(payload, id=event_id, occurred_at=now,
                                producer=producer, correlation_id=correlation_id)
        routes = ROUTES.get(envelope.type)
        if not routes:
            raise LookupError(f"no consumer is routed for {envelope.type}")
        body = jsoncodec.dumps(dump_envelope(envelope))
        for queue_name, actor_name in routes:
            row_id = next(ids, None) or new_id()
            rows.append({"id": row_id, "event_id": envelope.id, "message_type": envelope.type,
                         "queue_name": queue_name, "actor_name": actor_name, "body": body, "status": PENDING,
                         "created_at": now, "attempts": 0})
        event_ids.append(envelope.id)
    return rows, event_ids


def emit(session: Session, outbox_model: type, payload: Any, *, producer: str) -> str:
    """Add the message for ``payload`` to the outbox, one row per consumer. Returns the event id.

    Inside ``emitting_together`` the message is only collected (with its event id drawn now) and written
    with the others of the block at its end."""
    batch = session.info.get(EMIT_BATCH)
    if batch is not None and batch[0] is outbox_model:
        event_id = new_id()
        batch[1].append((payload, event_id))
        return event_id
    return emit_many(session, outbox_model, [payload], producer=producer)[0]


@contextlib.contextmanager
def emitting_together(session: Session, outbox_model: type, *, producer: str) -> Iterator[None]:
    """Collect the ``emit`` calls of the block and write all their outbox rows at its end in one statement
    (``emit_many``), in the order emitted, with the ids ``emit`` returned.  Nothing is written when the
    block raises.  A nested block joins the outer one."""
    if session.info.get(EMIT_BATCH) is not None:
        yield
        return
    session.info[EMIT_BATCH] = (outbox_model, [])
    try:
        yield
        collected = session.info[EMIT_BATCH][1]
    finally:
        session.info.pop(EMIT_BATCH, None)
    if collected:
        _emit_rows(session, outbox_model, *_outbox_rows([p for p, _ in collected], producer=producer,
                                                        event_ids_given=[i for _, i in collected]))


def _emit_rows(session: Session, outbox_model: type, rows: list[dict], event_ids: list[str]) -> list[str]:
    if len(rows) >= COPY_FROM and session.get_bind().dialect.name == "postgresql":
        bulk_insert(session, outbox_model.__table__, rows)
    elif rows:
        session.execute(insert(outbox_model.__table__), rows)
    if rows:
        session.info[OUTBOX_WRITTEN] = True
    return event_ids


def outbox_rows(payloads: Iterable[Any], *, producer: str) -> list[dict]:
    """The rows ``emit_many`` would insert for ``payloads``, for a caller that inserts them in a statement of
    its own (intake: one statement per registration); it then sets ``session.info[OUTBOX_WRITTEN]``."""
    return _outbox_rows(payloads, producer=producer)[0]


def emit_many(session: Session, outbox_model: type, payloads: Iterable[Any], *, producer: str) -> list[str]:
    """``emit`` for each payload in order (one envelope each with a new id, one row per route), with one
    ``clock.now()`` and the current correlation id for all, and all the rows in ONE executemany INSERT
    (Core, no unit of work; batched as multi-row VALUES by SQLAlchemy's insertmanyvalues), or from
    ``COPY_FROM`` rows on PostgreSQL one ``COPY`` (``shared.bulk.bulk_insert``: a sweep's thousands of rows).
    LookupError for an unrouted type (nothing is written).  Returns the event ids in order."""
    return _emit_rows(session, outbox_model, *_outbox_rows(payloads, producer=producer))


def claim_message(session: Session, inbox_model: type, message_id: str, actor_name: str) -> bool:
    """Record ``message_id`` as processed; False if it already was (skip the effects).

    On PostgreSQL a concurrent duplicate blocks on the primary key until the
    first transaction ends, then sees the conflict: exactly one wins.
    """
    values = {"message_id": message_id, "actor_name": actor_name, "processed_at": clock.now()}
    table = inbox_model.__table__
    if session.get_bind().dialect.name == "postgresql":
        stmt = pg_insert(table).values(**values).on_conflict_do_nothing().returning(table.c.message_id)
        return session.execute(stmt).first() is not None
    stmt = insert(table).values(**values).prefix_with("OR IGNORE")
    return session.execute(stmt).rowcount == 1


class OutboxRelay:
    """Publishes pending outbox rows of one service to the broker."""

    def __init__(self, *, service: str, sessions: sessionmaker[Session], outbox_model: type,
                 broker: dramatiq.Broker, poll_seconds: float = 0.5, batch_size: int = 200,
                 confirm_on_ack: bool = False) -> None:
        self.service = service
        self.sessions = sessions
        self.model = outbox_model
        self.broker = broker
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.confirm_on_ack = confirm_on_ack
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._confirm_lock = threading.Lock()
        self._confirms: list[tuple[str, bool, str | None]] = []
        self._claims: dict[str, Any] = {}

    # -- publishing
    def publish_pending(self) -> int:
        """Publish one batch of pending rows; returns how many were published.

        One statement claims the batch (the oldest pending rows, ``FOR UPDATE SKIP LOCKED`` on
        PostgreSQL so that the relays of several processes take disjoint batches) and marks it
        published, returning the rows; the messages then go to the broker in one pipeline
        (``enqueue_many``) before the commit.  A failed publication rolls the marks back.

        On PostgreSQL the commit does not wait for the WAL flush (``synchronous_commit`` off for this
        transaction): a mark lost in a server crash only sends its messages again under the same ids,
        which the consumers' inboxes already drop.

        And the claim walks ``ix_outbox_pending`` with an index scan (bitmap scans off for this transaction).
        Every published row leaves a dead entry in that partial index until a VACUUM.  An index scan marks
        each one dead the first time it meets it (btree's ``LP_DEAD`` hint) and skips it from then on; a
        bitmap scan, which the planner picks when it expects a few hundred pending rows, never marks them
        and visits every row published since the last VACUUM again in each claim (measured: 11,364 dead
        entries, 2,212 buffers and 3.5-8 ms per claim, against 30 buffers and 0.05 ms with the index scan)."""
        with unit_of_work(self.sessions) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(_RELAY_SETTINGS)
            rows = session.execute(self._claim_statement(session),
                                   {"published_at": clock.now(), "batch": self.batch_size}).all()
            if not rows:
                return 0
            rows.sort(key=lambda r: (r.created_at, r.id))
            messages = []
            for row in rows:
                body = jsoncodec.loads(row.body)
                messages.append(dramatiq.Message(
                    queue_name=row.queue_name, actor_name=row.actor_name, args=(body,), kwargs={},
                    options={"producer": self.service, "correlation_id": body.get("correlation_id", "")},
                    message_id=row.id))
            enqueue_many(self.broker, messages)
            return len(rows)

    def _claim_statement(self, session: Session):
        """``WITH claimed AS MATERIALIZED (the oldest pending, LIMIT batch, FOR UPDATE SKIP LOCKED) UPDATE outbox
        SET status='published' … WHERE id IN (SELECT id FROM claimed) RETURNING …``, built once per dialect.

        The selection is a materialized CTE, not a plain ``IN (subquery)``: PostgreSQL may run such a
        subquery again for each row of a nested loop, and with SKIP LOCKED every run can pick other rows,
        so the UPDATE could mark (and this relay publish) more rows than the LIMIT in one transaction."""
        dialect = session.get_bind().dialect.name
        found = self._claims.get(dialect)
        if found is None:
            table = self.model.__table__
            oldest = (select(table.c.id).where(table.c.status == PENDING)
                      .order_by(table.c.created_at).limit(bindparam("batch", type_=Integer)))
            if dialect == "postgresql":
                oldest = oldest.with_for_update(skip_locked=True)
            claimed = oldest.cte("claimed").prefix_with("MATERIALIZED")
            found = self._claims[dialect] = (
                update(table).where(table.c.id.in_(select(claimed.c.id)))
                .values(status=PUBLISHED, published_at=bindparam("published_at"), attempts=table.c.attempts + 1)
                .returning(table.c.id, table.c.queue_name, table.c.actor_name, table.c.body, table.c.created_at))
        return found

    def drain(self) -> int:
        """Write the queued confirmations, then publish until nothing is pending (a short batch means the
        outbox is empty)."""
        self.flush_confirms()
        total = 0
        while True:
            n = self.publish_pending()
            total += n
            if n < self.batch_size:
                return total

    def requeue_unconfirmed(self) -> int:
        """Embedded restart: rows published to the lost in-memory broker go out again."""
        with unit_of_work(self.sessions) as session:
            result = session.execute(update(self.model).where(self.model.status == PUBLISHED)
                                     .values(status=PENDING))
            if result.rowcount:
                log.warning("%s: %d outbox message(s) were in flight at the last stop; re-publishing",
                            self.service, result.rowcount)
            return result.rowcount

    def confirm(self, message_id: str, *, failed: bool = False, error: str | None = None) -> None:
        """Called once the consumer finished with the message (embedded default only).

        While the relay thread runs, confirmations are queued and written by that thread in one transaction
        per batch (``flush_confirms``): a consumer's worker thread never waits for the producer's SQLite
        write lock.  A confirmation lost in a crash only means the message is published again at restart,
        and the consumer's inbox makes that a no-op."""
        with self._confirm_lock:
            self._confirms.append((message_id, failed, error))
        if self._thread is None or not self._thread.is_alive():
            self.flush_confirms()
        else:
            self._wake.set()

    def flush_confirms(self) -> int:
        """Write the queued confirmations (done in one UPDATE per chunk, failures one by one)."""
        with self._confirm_lock:
            batch, self._confirms = self._confirms, []
        if not batch:
            return 0
        done = [message_id for message_id, failed, _ in batch if not failed]
        try:
            with unit_of_work(self.sessions) as session:
                for i in range(0, len(done), CONFIRM_CHUNK):
                    session.execute(update(self.model).where(self.model.id.in_(done[i:i + CONFIRM_CHUNK]))
                                    .values(status=DONE, last_error=None))
                for message_id, failed, error in batch:
                    if failed:
                        session.execute(update(self.model).where(self.model.id == message_id)
                                        .values(status=DEAD, last_error=error))
        except Exception:
            with self._confirm_lock:  # keep them for the next round
                self._confirms[:0] = batch
            raise
        return len(batch)

    def backlog(self) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(self.model)
                                  .where(self.model.status == PENDING)) or 0

    def prune(self, *, older_than: timedelta) -> int:
        """Forget finished rows older than the retention period."""
        cutoff = clock.now() - older_than
        finished = DONE if self.confirm_on_ack else PUBLISHED
        with unit_of_work(self.sessions) as session:
            return session.execute(delete(self.model).where(self.model.status == finished,
                                                            self.model.published_at < cutoff)).rowcount

    # -- background loop
    def kick(self) -> None:
        """Wake the relay now (after a commit that wrote outbox rows)."""
        self._wake.set()

    def start(self) -> None:
        if self.confirm_on_ack:
            self.requeue_unconfirmed()
        self._thread = threading.Thread(target=self._run, name=f"outbox-relay-{self.service}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout)
        try:
            self.flush_confirms()
        except Exception:
            log.exception("%s: could not write the last confirmations; they will be republished", self.service)

    def _run(self) -> None:
        busy = False
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if busy:  # commits kept arriving: let a few more land so one transaction carries them
                    self._stop.wait(COALESCE_SECONDS)
                self.drain()
                busy = self._wake.is_set()  # woken again while draining: under load
            except Exception:
                log.exception("%s: outbox relay failed; retrying", self.service)
                self._stop.wait(self.poll_seconds)
            self._wake.wait(self.poll_seconds)


def after_commit_kick(session_factory: sessionmaker[Session], relay_getter: Callable[[], OutboxRelay | None]) -> None:
    """Wake the relay whenever a session of this factory commits outbox rows."""
    from sqlalchemy import event

    @event.listens_for(session_factory, "after_commit")
    def _kick(session):
        if session.info.pop(OUTBOX_WRITTEN, False):
            relay = relay_getter()
            if relay is not None:
                relay.kick()

    @event.listens_for(session_factory, "after_rollback")
    def _forget(session):
        session.info.pop(OUTBOX_WRITTEN, None)
