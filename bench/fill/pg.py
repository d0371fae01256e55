"""The bulk fill's PostgreSQL fast path (批量造数·PostgreSQL): COPY in writer threads, indexes built after.

``CopySink`` takes the rows of a table in chunks and writes each chunk with ``COPY … FROM STDIN`` on the
service's own psycopg connection, in one writer thread per service (each shard process has its own sink),
so the server parses, inserts and commits while the shard builds the next rows.  Values go to psycopg as
they are (aware datetimes, str, bool, int) except JSON columns, which are serialised with the dialect's
JSON serializer (``json.dumps`` unless the engine sets one: the text the bind processor's ``Json`` sends,
without its per-value wrapper and dumper look-up; ``json_text``: the same text from one C encoder).  Datetimes and dates go through ``_MemoDatetimeDumper``: the fill's
instants are few (the days' 09:00 and 15:00, the deadlines computed from them) and psycopg's own text dumper
of an aware datetime costs about ten times a string's, so each distinct value is formatted once.
``synchronous_commit`` is off on these connections (a crash loses the fill, which is simply run again).  The report gets the writer threads' CPU and the CPU of
the COPY sessions' server processes (``/proc``, when the server runs on this machine).

``deferred_constraints`` drops the filled tables' indexes, unique/primary keys and foreign keys before the
load and re-creates them from their own definitions (``pg_get_indexdef`` / ``pg_get_constraintdef``) after
it, so the schema is exactly what the migrations made; building an index once over sorted input is far
cheaper than maintaining it row by row, and re-adding a foreign key validates every row in one pass.  The
re-creation runs in three phases over all databases at once, three statements at a time
(``restore_jobs``: keys, then indexes, then foreign keys), with ``maintenance_work_mem`` 1GB.
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from datetime import date, datetime
from json.encoder import c_make_encoder, encode_basestring_ascii
from operator import itemgetter

from psycopg.adapt import Dumper, PyFormat, Transformer
from sqlalchemy import JSON
from sqlalchemy.engine import make_url


#: ``json.dumps`` with its default arguments as one C encoder made once (``json.dumps`` makes one per call):
#: the same text, without the circular-reference check (the fill's values are trees).
_JSON_ENCODER = c_make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ",
                               False, False, True) if c_make_encoder else None


def json_text(value) -> str:
    """``json.dumps(value)``."""
    return "".join(_JSON_ENCODER(value, 0)) if _JSON_ENCODER else json.dumps(value)


def psycopg_url(engine) -> str:
    """The libpq connection string of a SQLAlchemy engine's URL."""
    url = make_url(str(engine.url.render_as_string(hide_password=False))).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class _MemoDatetimeDumper(Dumper):
    """COPY text of a datetime: psycopg's own dumper, each distinct value formatted once.

    Keys are the values themselves: two aware datetimes of the same instant in different zones are equal
    and share one text, which is right for the fill's columns (all ``timestamptz``: the server stores the
    instant, not the offset).  The memo is shared by the writer threads (a dict's get/set hold the GIL)."""

    memo: dict = {}
    LIMIT = 200_000  # distinct values kept (a year's instants are a few thousand)

    def __init__(self, cls: type, context=None) -> None:
        super().__init__(cls, context)
        self.psycopg = Transformer()  # the global adapters: psycopg's own dumpers

    def dump(self, obj) -> bytes:
        text = self.memo.get(obj)
        if text is None:
            if len(self.memo) > self.LIMIT:
                self.memo.clear()
            text = self.memo[obj] = bytes(self.psycopg.get_dumper(obj, PyFormat.TEXT).dump(obj))
        return text


class _MemoDateDumper(_MemoDatetimeDumper):
    """COPY text of a date, formatted once per distinct date (its own memo: a date is never a datetime key)."""

    memo: dict = {}


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
        self.closed = False
        self.backends: list[int] = []  # the COPY connections' server processes (their CPU is reported)
        for svc, engine in engines.items():
            conn = psycopg.connect(psycopg_url(engine), autocommit=False)
            conn.execute("SET synchronous_commit = off")
            conn.adapters.register_dumper(datetime, _MemoDatetimeDumper)
            conn.adapters.register_dumper(date, _MemoDateDumper)
            self.backends.append(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
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
            dumps = self.dialects[svc]._json_serializer or json_text  # what the bind processor's Json uses
            found = [(i, dumps) for i, name in enumerate(names) if isinstance(table.c[name].type, JSON)]
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
                started, cpu = time.perf_counter(), time.thread_time()
                names = tuple(rows[0])
                processors = self._processors(svc, table, names)
                quoted = ", ".join(f'"{n}"' for n in names)
                values_of = itemgetter(*names)  # a row's values in column order (a tuple, built in C)
                with conn.cursor() as cur, cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
                    write = copy.write_row
                    if processors:
                        for row in rows:
                            values = list(values_of(row))
                            for i, process in processors:
                                if values[i] is not None:
                                    values[i] = process(values[i])
                            write(values)
                    else:
                        for row in rows:
                            write(values_of(row))
                conn.commit()
                with self.lock:
                    self.seconds[f"copy {svc}.{table.name} (writer thread)"] += time.perf_counter() - started
                    self.seconds["copy: writer threads' CPU (all tables)"] += time.thread_time() - cpu
                    self.rows[f"copy {svc}.{table.name} (writer thread)"] += len(rows)
        except BaseException as exc:  # reported by put / close
            self.errors.append(exc)
            while q.get() is not None:
                pass
        finally:
            conn.close()

    def close(self) -> None:
        self.closed = True
        cpu = server_cpu(self.backends)
        for q in self.queues.values():
            q.put(None)
        for thread in self.threads:
            thread.join()
        if cpu is not None:
            self.seconds["copy: server CPU of the COPY sessions"] += cpu
        if self.errors:
            raise RuntimeError("a COPY writer failed") from self.errors[0]


def server_cpu(pids: list[int]) -> float | None:
    """CPU seconds (user + system) the server processes ``pids`` used so far, when they run on this machine."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    try:
        for pid in pids:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError, IndexError):
        return None
    return total


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
    """What ``drop`` took off one database's tables, to put back (``restore_jobs``)."""

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

    def restore_jobs(self, *, memory: str) -> list[list[tuple]]:
        """The statements that put everything back, in three phases (each phase's jobs may run at once):
        primary and unique keys (one job per table: they lock it), then the plain indexes (one job each:
        builds on one table share its lock), then the foreign keys (they read the keys of phase one)."""
        keys: dict[str, list[str]] = {}
        for name, table, kind, definition in sorted(self.constraints, key=lambda c: {"p": 0, "u": 1}.get(c[2], 2)):
            if kind in ("p", "u"):
                keys.setdefault(table, []).append(f'ALTER TABLE {_quote(table)} ADD CONSTRAINT "{name}" {definition}')
        foreign = [[f'ALTER TABLE {_quote(table)} ADD CONSTRAINT "{name}" {definition}']
                   for name, table, kind, definition in self.constraints if kind not in ("p", "u")]
        indexes = [[definition] for _, definition in self.indexes]
        setting = f"SET maintenance_work_mem = '{memory}'"
        return [[(self.engine, setting, stmts) for stmts in phase] for phase in (list(keys.values()), indexes, foreign)]


def _execute(engine, setting: str, statements: list[str]) -> None:
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(setting)
            for statement in statements:
                cur.execute(statement)
        raw.commit()


@contextmanager
def deferred_constraints(engines: dict, tables: dict[str, list[str]], seconds: dict, *, connections: int = 3,
                         memory: str = "1GB"):
    """Drop the indexes and keys of ``tables`` (per service) for the block; re-create them after it, every
    database's in the same phases, ``connections`` statements at a time (the server sorts on both cores;
    ``memory``: maintenance_work_mem per build, so that a build of ten million keys sorts in memory)."""
    deferred = {svc: Deferred(engines[svc], names) for svc, names in tables.items() if names}
    started = time.perf_counter()
    for d in deferred.values():
        d.drop()
    seconds["drop indexes and keys"] += time.perf_counter() - started
    yield
    started = time.perf_counter()
    plans = [d.restore_jobs(memory=memory) for d in deferred.values()]
    for phase in range(3):
        jobs = [job for plan in plans for job in plan[phase]]
        pool(jobs, connections)
    seconds["re-create indexes and keys"] += time.perf_counter() - started


def pool(jobs: list[tuple], threads: int) -> None:
    """Run ``_execute(*job)`` for every job, ``threads`` at a time, in order; on the first error the jobs not
    yet started are dropped and the error is raised."""
    if not jobs:
        return
    with ThreadPoolExecutor(max_workers=min(threads, len(jobs))) as executor:
        for done in as_completed([executor.submit(_execute, *job) for job in jobs]):
            if done.exception() is not None:
                executor.shutdown(cancel_futures=True)
                raise done.exception()


def parallel(jobs: dict) -> dict:
    """Run the callables of ``jobs`` in threads, all at once; their results by key (an error is raised)."""
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as executor:
        futures = {key: executor.submit(fn) for key, fn in jobs.items()}
    return {key: future.result() for key, future in futures.items()}


def vacuum_analyze(engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")

