"""The bulk fill's PostgreSQL fast path (批量造数·PostgreSQL): COPY in writer threads, indexes built after.

``CopySink`` takes the rows of a table in chunks and writes each chunk with ``COPY … FROM STDIN`` on the
service's own psycopg connection, in one writer thread per service (each shard process has its own sink),
so the server parses, inserts and commits while the shard builds the next rows.  The COPY is binary, with
each column's type from the catalog (``Copy.set_types``): the values go to psycopg's C dumpers as they are
(aware datetimes, dates, str, bool, int, float), none formatted as text in Python nor parsed from text by the
server (a timestamp's text costs both sides several times its 8 binary bytes).  JSON columns get the text the
bind processor's ``Json`` sends: the dialect's JSON serializer, else ``json_text`` (``json.dumps``'s text
from one C encoder).
``synchronous_commit`` is off on these connections (a crash loses the fill, which is simply run again).  The report gets the writer threads' CPU and the CPU of
the COPY sessions' server processes (``/proc``, when the server runs on this machine).

``deferred_constraints`` drops the filled tables' indexes, unique/primary keys and foreign keys before the
load and re-creates them from their own definitions (``pg_get_indexdef`` / ``pg_get_constraintdef``) after
it, so the schema is exactly what the migrations made; building an index once over sorted input is far
cheaper than maintaining it row by row, and re-adding a foreign key validates every row in one pass.  The
re-creation (``restore``) runs one job per table (VACUUM ANALYZE, its keys, its indexes), the largest tables
first, three at a time over all databases, with ``maintenance_work_mem`` 1GB; as soon as a database's tables
are done, its foreign keys and the VACUUM ANALYZE of its other tables, while the others still build (no phase
waits for the slowest build).
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from json.encoder import c_make_encoder, encode_basestring_ascii
from operator import itemgetter

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


class CopySink:
    """COPY writer threads, one per service; ``put`` a chunk, ``close`` waits for all and raises any error."""

    def __init__(self, engines: dict, seconds: dict, rows: dict, *, depth: int = 3) -> None:
        import psycopg
        from psycopg.types.json import set_json_dumps

        self.seconds, self.rows = seconds, rows
        self.queues: dict[str, queue.Queue] = {}
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.closed = False
        self.backends: list[int] = []  # the COPY connections' server processes (their CPU is reported)
        for svc, engine in engines.items():
            conn = psycopg.connect(psycopg_url(engine), autocommit=False)
            conn.execute("SET synchronous_commit = off")
            # JSON columns: the text the bind processor's Json sends (the dialect's serializer, else json.dumps's)
            set_json_dumps(engine.dialect._json_serializer or json_text, context=conn)
            self.backends.append(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
            conn.commit()
            q: queue.Queue = queue.Queue(maxsize=depth)
            self.queues[svc] = q
            thread = threading.Thread(target=self._run, args=(svc, conn, q), name=f"copy-{svc}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def put(self, svc: str, table, rows: list[dict]) -> None:
        if self.errors:
            raise RuntimeError("a COPY writer failed") from self.errors[0]
        self.queues[svc].put((table, rows))

    def _run(self, svc: str, conn, q: queue.Queue) -> None:
        types: dict[str, dict[str, int]] = {}  # table -> column -> type oid, from the catalog
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
                if table.name not in types:
                    types[table.name] = dict(conn.execute(
                        "SELECT attname, atttypid::int FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                        (f'"{table.name}"',)).fetchall())
                quoted = ", ".join(f'"{n}"' for n in names)
                values_of = itemgetter(*names)  # a row's values in column order (a tuple, built in C)
                with conn.cursor() as cur, \
                        cur.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN (FORMAT BINARY)') as copy:
                    copy.set_types([types[table.name][n] for n in names])
                    write = copy.write_row
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
SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
WHERE i.indrelid = ANY(%(t)s::regclass[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


def _quote(name: str) -> str:
    return name if name.startswith('"') else f'"{name}"'


class Deferred:
    """What ``drop`` took off one database's tables, to put back (``table_jobs``, then ``tail``)."""

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
                for name, _, _ in self.indexes:
                    cur.execute(f"DROP INDEX IF EXISTS {_quote(name)}")
            raw.commit()

    def table_jobs(self) -> list[tuple[int, list[str]]]:
        """Per table (largest first, with its size), in one job: VACUUM ANALYZE (on the bare heap: no index to
        scan yet, and the builds then read pages whose hint bits are set), its primary and unique keys, its
        plain indexes (a key's ALTER TABLE locks the table: an index build beside it would only wait)."""
        jobs: dict[str, list[str]] = {}
        for name, table, kind, definition in sorted(self.constraints, key=lambda c: {"p": 0, "u": 1}.get(c[2], 2)):
            if kind in ("p", "u"):
                jobs.setdefault(table, []).append(f'ALTER TABLE {_quote(table)} ADD CONSTRAINT "{name}" {definition}')
        for _, table, definition in self.indexes:
            jobs.setdefault(table, []).append(definition)
        with self.engine.connect() as conn:
            sizes = dict(conn.exec_driver_sql("SELECT c.oid::regclass::text, pg_relation_size(c.oid) FROM pg_class c "
                                              "WHERE c.oid = ANY(%(t)s::regclass[])", {"t": list(jobs)}).all())
        return sorted(((sizes.get(table, 0), [f"VACUUM ANALYZE {_quote(table)}", *stmts]) for table, stmts in jobs.items()),
                      key=lambda j: -j[0])

    def tail(self) -> list[str]:
        """Once every table's job is done: the foreign keys (they read the keys), then VACUUM ANALYZE of the
        database's other tables (the directory, rules and policies the bootstrap wrote)."""
        with self.engine.connect() as conn:
            others = [t for (t,) in conn.exec_driver_sql(
                "SELECT c.oid::regclass::text FROM pg_class c WHERE c.relkind = 'r' "
                "AND c.relnamespace = current_schema()::regnamespace AND NOT c.oid = ANY(%(t)s::regclass[])",
                {"t": self.tables})]
        return ([f'ALTER TABLE {_quote(table)} ADD CONSTRAINT "{name}" {definition}'
                 for name, table, kind, definition in self.constraints if kind not in ("p", "u")]
                + ([f"VACUUM ANALYZE {', '.join(map(_quote, others))}"] if others else []))


def _execute(engine, setting: str, statements: list[str]) -> None:
    """The statements in order, each in its own transaction (VACUUM may not run in one; the pool resets the
    connection's isolation level when it is given back)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute(setting)
            for statement in statements:
                cur.execute(statement)


@contextmanager
def deferred_constraints(engines: dict, tables: dict[str, list[str]], seconds: dict, *, connections: int = 3,
                         memory: str = "1GB"):
    """Drop the indexes and keys of ``tables`` (per service) for the block; after it re-create them and
    VACUUM ANALYZE each database (``restore``)."""
    deferred = [Deferred(engines[svc], names) for svc, names in tables.items() if names]
    started = time.perf_counter()
    for d in deferred:
        d.drop()
    seconds["drop indexes and keys"] += time.perf_counter() - started
    yield
    started = time.perf_counter()
    restore(deferred, connections=connections, memory=memory)
    seconds["re-create indexes and keys, VACUUM ANALYZE"] += time.perf_counter() - started


def restore(deferred: list[Deferred], *, connections: int, memory: str) -> None:
    """Every table's job of every database, the largest first, ``connections`` at a time (the server sorts on
    both cores; ``memory``: maintenance_work_mem per build, so that a build of ten million keys sorts in
    memory); a database's ``tail`` as soon as its own tables are done (a small database's foreign keys are
    validated while the large ones still build).  On the first error the jobs not yet started are dropped and it is raised."""
    setting = f"SET maintenance_work_mem = '{memory}'"
    pending = sorted(((size, d, stmts) for d in deferred for size, stmts in d.table_jobs()), key=lambda j: -j[0])
    left = {id(d): sum(1 for _, owner, _ in pending if owner is d) for d in deferred}
    tails = [d for d in deferred if not left[id(d)]]
    with ThreadPoolExecutor(max_workers=connections) as executor:
        running: dict = {}
        while running or pending or tails:
            while len(running) < connections and (tails or pending):
                if tails:  # a database whose tables are done goes first (its foreign keys are on the critical path)
                    d = tails.pop(0)
                    running[executor.submit(_execute, d.engine, setting, d.tail())] = None
                else:
                    _, d, stmts = pending.pop(0)
                    running[executor.submit(_execute, d.engine, setting, stmts)] = d
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                owner = running.pop(future)
                if future.exception() is not None:
                    raise future.exception()  # the jobs not yet started are dropped; the running ones end first
                if owner is not None:
                    left[id(owner)] -= 1
                    if not left[id(owner)]:
                        tails.append(owner)
