"""The service engines' pool on PostgreSQL: no ping per checkout, yet a connection dropped while it
sat idle in the pool is replaced before a request uses it (shared.db._ping_when_idle)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import event, text

from shared import db


@pytest.fixture
def engine(pg_urls):
    engine = db.create_db_engine(pg_urls["intake"], pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


def _count_pings(engine) -> list[str]:
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, *_args):
        seen.append(statement)

    original = engine.dialect.do_ping

    def ping(dbapi_conn):
        seen.append("PING")
        return original(dbapi_conn)

    engine.dialect.do_ping = ping
    return seen


def test_a_connection_back_from_use_a_moment_ago_is_not_pinged(engine):
    seen = _count_pings(engine)
    for _ in range(5):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1 AS one"))
    assert seen.count("PING") == 0
    assert len(seen) == 5


def test_a_connection_dropped_while_idle_is_replaced_before_use(engine, pg_admin, monkeypatch):
    with engine.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    # Given the pooled connection's server process ends while the connection idles in the pool
    with pg_admin.connect() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.05)
    time.sleep(0.1)
    seen = _count_pings(engine)
    # When the next unit of work checks it out
    with engine.connect() as conn:
        new_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    # Then it was pinged, found dead and replaced: the statement ran on a new connection
    assert seen.count("PING") == 1
    assert new_pid != pid


def test_sqlite_engines_take_the_same_arguments(tmp_path):
    engine = db.create_db_engine(f"sqlite:///{tmp_path / 'x.db'}", ping_idle=False)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_the_display_counter_retries_once_on_a_connection_that_died(pg_urls, pg_admin, monkeypatch):
    from intake_svc import service
    from shared.config import Settings
    from shared.migrations import upgrade

    settings = Settings(database_urls={"intake": pg_urls["intake"]})
    upgrade("intake", settings)
    engine = db.create_db_engine(pg_urls["intake"])
    sessions = db.session_factory(engine)
    try:
        with db.unit_of_work(sessions) as session:
            first = service.next_display_no(session, "411303", "Asia/Shanghai")
        counter_pool = service._autocommit_engine(engine)
        with counter_pool.connect() as conn:
            pids = [conn.execute(text("SELECT pg_backend_pid()")).scalar()]
        # Given the counter pool's connection dies and is not caught by the idle check
        monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600)
        with pg_admin.connect() as admin:
            for pid in pids:
                admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        time.sleep(0.1)
        # When the next number is drawn, it is drawn on a fresh connection
        with db.unit_of_work(sessions) as session:
            second = service.next_display_no(session, "411303", "Asia/Shanghai")
        assert int(second[-4:]) == int(first[-4:]) + 1
    finally:
        engine.dispose()


def test_the_registration_pools_keep_a_connection_per_web_thread(pg_urls):
    """Eight threads drawing display numbers at once, again and again, open at most eight connections: the
    counter's pool keeps what it opened (a pool smaller than the threads closed its overflow on return, so
    under load nearly every registration forked a PostgreSQL backend)."""
    import threading

    from intake_svc import service
    from shared.config import Settings
    from shared.migrations import upgrade

    upgrade("intake", Settings(database_urls={"intake": pg_urls["intake"]}))
    engine = db.create_db_engine(pg_urls["intake"])
    try:
        opened = []
        for synchronous in (False, True):
            event.listen(service._autocommit_engine(engine, synchronous=synchronous), "connect",
                         lambda *_: opened.append(1))
        start = threading.Barrier(8)

        def work(n: int) -> None:
            start.wait()
            for _ in range(15):
                service.next_display_no(engine, f"4113{n:02d}", "Asia/Shanghai")
                time.sleep(0.002)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert 1 <= len(opened) <= 8
    finally:
        engine.dispose()
