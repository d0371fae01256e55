"""The bulk fill's PostgreSQL fast path (批量造数·PostgreSQL): COPY in writer threads, indexes built after.

``CopySink`` takes the rows of a table in chunks and writes each chunk with ``COPY … FROM STDIN`` on the
service's own psycopg connection, in one writer thread per service, so the server parses, inserts and
commits while this process builds the next rows (the two cores work at once).  Values go to psycopg as
they are (aware datetimes, str, bool, int) except JSON columns, which go through the column's own bind
processor (SQLAlchemy's JSON serializer: the text a Core INSERT sends).  ``synchronous_commit`` is off on
these connections (a crash loses the fill, which is simply run again).

``deferred_constraints`` drops the filled tables' indexes, unique/primary keys and foreign keys before the
load and re-creates them from their own definitions (``pg_get_indexdef`` / ``pg_get_constraintdef``) after
it, so the schema is exactly what the migrations made; building an index once over sorted input is far
cheaper than maintaining it row by row, and re-adding a foreign key validates every row in one pass.
"""
from __future__ import annotations

import queue
import threading
import time
from contextlib import contextmanager

from sqlalchemy import JSON
from sqlalchemy.engine import make_url


def psycopg_url(engine) -> str:
    """The libpq connection string of a SQLAlchemy engine's URL."""
    url = make_url(str(engine.url.render_as_string(hide_password=False))).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class CopySink:
    """COPY writer threads, one per service; ``put`` a chunk, ``close`` waits for all and raises any error."""

    def __init__(self, engines: dict, seconds: dict, rows: dict, *, depth: int = 3) -> None:
        import psycopg

        self.seconds, self.rows = seconds, rows
        self.queues: dict[str, queue.Queue] = {}
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.processors: dict[tuple, list] = {}
        self.dialects = {svc: engine.dialect for svc, engine in engines.items()}
        self.lock = threading.Lock()
        for svc, engine in engines.items():
            conn = psycopg.connect(psycopg_url(engine), autocommit=False)
            conn.execute("SET synchronous_commit = off")
            conn.commit()
            q: queue.Queue = queue.Queue(maxsize=depth)
            self.queues[svc] = q
            thread = threading.Thread(target=self._run, args=(svc, conn, q), name=f"copy-{svc}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def _processors(self, svc: str, table, names: tuple) -> list:
        key = (svc, table.name, names)
        found = self.processors.get(key)
        if found is None:
            dialect = self.dialects[svc]
            found = []
            for i, name in enumerate(names):
                if isinstance(table.c[name].type, JSON):
                    process = table.c[name].type._cached_bind_processor(dialect)
                    if process is not None:
                        found.append((i, process))
            self.processors[key] = found
        return found

    def put(self, svc: str, table, rows: list[dict]) -> None:
        if self.errors:
            raise RuntimeError("a COPY writer failed") from self.errors[0]
        self.queues[svc].put((table, rows))

    def _run(self, svc: str, conn, q: queue.Queue) -> None:
        try:
            while True:
                item = q.get()
                if item is None:
                    return
                if self.errors:
                    continue
                table, rows = item
                started = time.perf_counter()
                names = tuple(rows[0])
                processors = self._processors(svc, table, names)
                quoted = ", ".join(f'"{n}"' for n in names)
                with conn.cursor() as cur, cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
                    write = copy.write_row
                    if processors:
                        for row in rows:
                            values = [row[n] for n in names]
                            for i, process in processors:
                                if values[i] is not None:
                                    values[i] = process(values[i])
                            write(values)
                    else:
                        for row in rows:
                            write([row[n] for n in names])
                conn.commit()
                with self.lock:
                    self.seconds[f"copy {svc}.{table.name} (writer thread)"] += time.perf_counter() - started
                    self.rows[f"copy {svc}.{table.name} (writer thread)"] += len(rows)
        except BaseException as exc:  # reported by put / close
            self.errors.append(exc)
            while q.get() is not None:
                pass
        finally:
            conn.close()

    def close(self) -> None:
        for q in self.queues.values():
            q.put(None)
        for thread in self.threads:
            thread.join()
        if self.errors:
            raise RuntimeError("a COPY writer failed") from self.errors[0]


# ---------------------------------------------------------------- indexes and constraints

_CONSTRAINTS = """
SELECT c.conname, c.conrelid::regclass::text, c.contype, pg_get_constraintdef(c.oid)
FROM pg_constraint c
WHERE c.contype IN ('p', 'u', 'f') AND (c.conrelid = ANY(%(t)s::regclass[]) OR c.confrelid = ANY(%(t)s::regclass[]))
"""
_INDEXES = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = ANY(%(t)s::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


def _quote(name: str) -> str:
    return name if name.startswith('"') else f'"{name}"'


class Deferred:
    """What ``drop`` took off one database's tables, to put back with ``restore``."""

    def __init__(self, engine, tables: list[str]) -> None:
        self.engine, self.tables = engine, tables
        self.constraints: list[tuple] = []
        self.indexes: list[tuple] = []

    def drop(self) -> None:
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                cur.execute(_CONSTRAINTS, {"t": self.tables})
                self.constraints = sorted(set(cur.fetchall()))
                cur.execute(_INDEXES, {"t": self.tables})
                self.indexes = cur.fetchall()
                for name, table, _kind, _ in sorted(self.constraints, key=lambda c: c[2] != "f"):  # FKs first
                    cur.execute(f'ALTER TABLE {_quote(table)} DROP CONSTRAINT IF EXISTS "{name}"')
                for name, _ in self.indexes:
                    cur.execute(f"DROP INDEX IF EXISTS {_quote(name)}")
            raw.commit()

    def restore(self, *, memory: str = "256MB") -> None:
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            with raw.cursor() as cur:
                cur.execute(f"SET maintenance_work_mem = '{memory}'")
                for name, table, _kind, definition in sorted(self.constraints, key=lambda c: {"p": 0, "u": 1}.get(c[2], 2)):
                    cur.execute(f'ALTER TABLE {_quote(table)} ADD CONSTRAINT "{name}" {definition}')
                for _, definition in self.indexes:
                    cur.execute(definition)
            raw.commit()


@contextmanager
def deferred_constraints(engines: dict, tables: dict[str, list[str]], seconds: dict):
    """Drop the indexes and keys of ``tables`` (per service) for the block; re-create them after it,
    the services in parallel threads (the server builds them on both cores)."""
    deferred = {svc: Deferred(engines[svc], names) for svc, names in tables.items() if names}
    started = time.perf_counter()
    for d in deferred.values():
        d.drop()
    seconds["drop indexes and keys"] += time.perf_counter() - started
    yield
    started = time.perf_counter()
    parallel({svc: d.restore for svc, d in deferred.items()})
    seconds["re-create indexes and keys"] += time.perf_counter() - started


def parallel(jobs: dict) -> dict:
    """Run the callables of ``jobs`` in threads; their results by key (the first error raised)."""
    results, errors = {}, []

    def run(key, fn):
        try:
            results[key] = fn()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def vacuum_analyze(engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")

