"""Shared bench plumbing: statistics, an open-loop pacer, and throw-away PostgreSQL / Redis."""
from __future__ import annotations

import contextlib
import os
import socket
import statistics
import threading
import time
import uuid
from typing import Callable, Iterator

PG_ADMIN_URL = os.environ.get("XINFANG_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("XINFANG_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
SERVICES = ("intake", "assign", "supervise", "notify")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(values: list[float]) -> dict:
    """Median, p95, max and count — in the unit of ``values``."""
    return {"n": len(values), "p50": statistics.median(values) if values else None,
            "p95": pct(values, 95), "max": max(values) if values else None}


def ms(seconds: list[float]) -> list[float]:
    return [s * 1000.0 for s in seconds]


def paced(n: int, rate: float, threads: int, send: Callable[[int, object], object],
          make_state: Callable[[], object] = lambda: None) -> tuple[list[dict], float]:
    """Open loop: call ``send(i, state)`` at ``t0 + i/rate`` from a pool of ``threads`` threads.

    Each thread takes the next free slot, so one slow call does not delay the schedule
    (as long as fewer than ``threads`` calls are slow at once).  Returns one record per
    call (scheduled, sent, done as perf_counter offsets from t0, result) and the wall time.
    """
    records: list[dict | None] = [None] * n
    counter = iter(range(n))
    lock = threading.Lock()
    t0 = time.perf_counter() + 0.2

    def loop() -> None:
        state = make_state()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent = time.perf_counter()
            try:
                result, error = send(i, state), None
            except Exception as exc:  # recorded, reported by the caller
                result, error = None, repr(exc)
            records[i] = {"scheduled": due - t0, "sent": sent - t0, "done": time.perf_counter() - t0,
                          "result": result, "error": error}

    pool = [threading.Thread(target=loop, name=f"pacer-{k}", daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return [r for r in records if r is not None], time.perf_counter() - t0


@contextlib.contextmanager
def pg_databases(tag: str | None = None) -> Iterator[dict[str, str]]:
    """Four fresh PostgreSQL databases ``xfb_<svc>_<tag>``, dropped (FORCE) on exit, even on failure."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    tag = tag or uuid.uuid4().hex[:8]
    names = {svc: f"xfb_{svc}_{tag}" for svc in SERVICES}
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    base = make_url(PG_ADMIN_URL)
    created: list[str] = []
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        yield {svc: base.set(database=name).render_as_string(hide_password=False) for svc, name in names.items()}
    finally:
        with admin.connect() as conn:
            for name in created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def redis_db(url: str = REDIS_URL) -> Iterator[str]:
    """The bench's Redis database (14), emptied before and after."""
    import redis

    client = redis.Redis.from_url(url)
    client.ping()
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@contextlib.contextmanager
def redis_namespace(namespace: str, url: str = REDIS_URL, *, flushdb: bool = False) -> Iterator[str]:
    """Redis DB 14 for one scenario: every key under ``<namespace>:`` deleted before and after.

    DB 14 is shared with the other benches under bench/ (they use their own namespaces), so the
    default never FLUSHDBs; ``flushdb=True`` empties the whole database instead (own it first).
    """
    import redis

    client = redis.Redis.from_url(url)
    client.ping()

    def clean() -> None:
        if flushdb:
            client.flushdb()
            return
        for key in client.scan_iter(match=f"{namespace}:*", count=1000):
            client.delete(key)

    clean()
    try:
        yield url
    finally:
        clean()
        client.close()
