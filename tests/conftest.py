"""Fixtures: settings per test, the two backends, the embedded system, tokens.

Backends: SQLite (the embedded default) always; PostgreSQL and Redis on this
machine (``XINFANG_TEST_PG_URL``, ``XINFANG_TEST_REDIS_URL``).  Locally an
unreachable server skips its tests; under ``CI=true`` it fails them.
"""
from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from tests.helpers import SECRET
from shared.config import SERVICES, Settings

PG_ADMIN_URL = os.environ.get("XINFANG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("XINFANG_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: backends are required, not skipped)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-default settings in a fresh data folder, clock control on (tests only)."""
    return Settings(data_dir=tmp_path / "var", secret_key=SECRET, clock_control=True,
                    outbox_poll_seconds=0.05, sweep_interval_seconds=3600, worker_threads=4)


@pytest.fixture(scope="session")
def pg_admin():
    """A connection to the real PostgreSQL server, used to create and drop test databases."""
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        unavailable(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc.__class__.__name__}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_urls(pg_admin) -> dict[str, str]:
    """Four fresh PostgreSQL databases, one per service, dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    tag = uuid.uuid4().hex[:8]
    names = {svc: f"xft_{svc}_{tag}" for svc in SERVICES}
    base = make_url(PG_ADMIN_URL)
    with pg_admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield {svc: base.set(database=name).render_as_string(hide_password=False) for svc, name in names.items()}
    with pg_admin.connect() as conn:
        for name in names.values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def redis_namespace() -> str:
    """A Redis key prefix of this test alone: runs sharing the server never see each other's queues."""
    return f"xft-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def redis_url(redis_namespace) -> str:
    """The real Redis; this test's keys (its namespace) are deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except Exception as exc:
        unavailable(f"Redis unreachable at {REDIS_URL}: {exc.__class__.__name__}")
    yield REDIS_URL
    for key in client.scan_iter(f"{redis_namespace}*", count=500):
        client.delete(key)


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request, settings: Settings) -> Settings:
    """Settings on each database backend (in-process broker)."""
    if request.param == "sqlite":
        return settings
    urls = request.getfixturevalue("pg_urls")
    return settings.replace(database_urls=urls)


@pytest.fixture
def system(settings: Settings):
    """The embedded system (all four services, in-process broker), started."""
    from shared.system import EmbeddedSystem

    sys_ = EmbeddedSystem(settings)
    sys_.start()
    yield sys_
    sys_.stop()
