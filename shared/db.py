"""Database setup for SQLAlchemy 2: one database per service.

SQLite is the embedded default (WAL, foreign keys on, a busy timeout, and
``BEGIN IMMEDIATE`` so that concurrent writers queue instead of failing);
PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``).
Times are stored as UTC whatever the backend (``UTCDateTime``).

Services never commit inside their use-case functions: the caller owns the
transaction through ``unit_of_work`` so that the outbox row is written with
the change it announces.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import DateTime, Engine, MetaData, String, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from shared import jsoncodec

#: Execution option marking a read-only session (SQLite begins it without taking the write lock).
READONLY = "xinfang_readonly"

#: Seconds a SQLite writer waits for the lock before giving up.
SQLITE_BUSY_TIMEOUT = 30

#: A pooled PostgreSQL connection that sat idle in the pool at least this long is pinged before it is
#: handed out (a connection dropped while idle is then replaced instead of failing a request); one
#: back from use within this time is handed out as it is (no ``SELECT 1`` round trip per checkout).
IDLE_PING_SECONDS = 2.0

#: Key of ``ConnectionRecord.info``: when the connection went back into the pool (``time.monotonic``).
_IDLE_SINCE = "xinfang_idle_since"

#: Constraint naming convention, so Alembic migrations name things the same on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """An aware datetime stored as UTC; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; use aware UTC datetimes")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def new_id() -> str:
    """A new immutable identifier (UUID4, 32 hex characters)."""
    return uuid.uuid4().hex


def make_base() -> type[DeclarativeBase]:
    """A fresh declarative base with its own metadata, one per service."""

    class Base(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)
        type_annotation_map = {datetime: UTCDateTime(), str: String()}

    return Base


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised via every sqlite test
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT * 1000}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        # Writers take the lock up front (queue on busy_timeout instead of failing on upgrade);
        # read-only sessions begin deferred, so readers never wait for the write lock (WAL).
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READONLY) else "BEGIN IMMEDIATE")


def create_db_engine(url: str, **kwargs) -> Engine:
    """Engine for a service database URL (sqlite:/// or postgresql+psycopg://).

    PostgreSQL connections are checked only after idling (``_ping_when_idle``; ``ping_idle=False``
    turns that off, ``pool_pre_ping=True`` asks for SQLAlchemy's ping on every checkout instead)."""
    parsed = make_url(url)
    kwargs.setdefault("json_serializer", jsoncodec.dumps)  # JSON columns through orjson (shared.jsoncodec)
    kwargs.setdefault("json_deserializer", jsoncodec.loads)
    ping_idle = kwargs.pop("ping_idle", True) and not kwargs.get("pool_pre_ping", False)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False}, **kwargs)
        _sqlite_pragmas(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, **kwargs)
    # An executemany INSERT without RETURNING (outbox rows, petitioners, …) as multi-row VALUES statements
    # (SQLAlchemy's insertmanyvalues, as with RETURNING) instead of psycopg's executemany, which enters
    # pipeline mode for every call: measured 0.25 -> 0.21 ms client and 0.16 -> 0.11 ms server CPU for a
    # two-row INSERT and its COMMIT.
    engine.dialect.use_insertmanyvalues_wo_returning = True
    if ping_idle:
        _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that were idle (``IDLE_PING_SECONDS``).

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout: a round trip and a transaction per
    unit of work.  Under load connections return to the pool and leave it again within
    milliseconds; only one that waited there may have been dropped (server restart, idle
    timeout, network).  Such a one is pinged; if it is dead, ``DisconnectionError`` makes the
    pool discard it and hand out a fresh one (SQLAlchemy's documented custom-ping recipe).  A
    connection that dies while in use fails its statement; SQLAlchemy then invalidates it and
    every older connection of the pool.
    """
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # new, or back from use a moment ago
        try:
            alive = dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_conn, None):
                raise DisconnectionError(f"pooled connection found dead after idling: {exc}") from exc
            raise
        if alive is False:
            raise DisconnectionError("pooled connection found dead after idling")


def session_factory(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``readonly`` ones must not write (on SQLite they would fail to lock)."""
    bind = engine.execution_options(**{READONLY: True}) if readonly else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextlib.contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session_or_engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else session_or_engine
    return bind.dialect.name == "postgresql"
