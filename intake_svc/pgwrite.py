"""PostgreSQL: every row of one registration in ONE statement (a data-modifying CTE).

The petition, its petitioners, its history entry (变更记录), its outbox rows and, with an
``Idempotency-Key``, the stored first response are written by one ``WITH … INSERT`` instead of
four or five INSERTs: one round trip and one statement for the server to bind and execute.  The
statement text depends only on the number of rows per table; it is built by SQLAlchemy (the same
columns, casts and quoting as its own INSERTs) once per shape, compiled once with PostgreSQL's ``$n``
placeholders and run on a psycopg ``RawCursor`` of the session's connection (no SQLAlchemy execution
layer, no query conversion by psycopg).  The parameters get here what SQLAlchemy's column types would
have done to them: aware times to UTC (``UTCDateTime``), JSON columns wrapped for psycopg (``JSON``:
``jsoncodec.dumps_bytes`` of the value, ``None`` as JSON ``null``).  SQLAlchemy's cursor events do not see it.

Constraints are checked as with separate INSERTs: the foreign keys of petitioners and history on
the petition inserted by the same statement hold (they are checked at the end of the statement),
and a duplicate (system, county_no) or Idempotency-Key raises ``IntegrityError`` and writes nothing.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime, timezone

from psycopg import RawCursor
from psycopg.types.json import Json
from sqlalchemy import Connection, Engine, Table, bindparam, insert
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import JSON

from shared import jsoncodec
from shared.db import UTCDateTime

#: (table, rows) in the order the statement writes them; the last table is the statement's main INSERT.
Batch = list[tuple[Table, list[dict]]]

#: Compiled with PostgreSQL's own placeholders ($1, $2 …): run on a psycopg ``RawCursor``, the text is sent
#: as it is.  (psycopg converts ``%(name)s`` queries per call when they are longer than 4096 characters or
#: have more than 50 parameters, as this one has: that parsing alone cost more than the statement saved.)
DIALECT = psycopg_dialect(paramstyle="numeric_dollar")
_PLAIN, _TIME, _DOCUMENT = 0, 1, 2
_lock = threading.Lock()
#: shape (table name, column names, row count per table) -> (SQL, the parameters as (table, row, column, kind))
_by_shape: dict[tuple, tuple[bytes, list[tuple[int, int, str, int]]]] = {}


def _kind(column) -> int:
    return _TIME if isinstance(column.type, UTCDateTime) else _DOCUMENT if isinstance(column.type, JSON) else _PLAIN


def _build(batch: Batch, shape: tuple) -> tuple[bytes, list[tuple[int, int, str, int]]]:
    """The statement of one shape (every table but the last as a CTE of the last one's INSERT) and where
    each of its positional parameters comes from."""
    statements, where = [], {}
    for n, (table, rows) in enumerate(batch):
        columns = list(rows[0])
        for i in range(len(rows)):
            where.update({f"t{n}r{i}_{c}": (n, i, c, _kind(table.c[c])) for c in columns})
        values = [{c: bindparam(f"t{n}r{i}_{c}") for c in columns} for i in range(len(rows))]
        statements.append(insert(table).values(values if len(values) > 1 else values[0]))
    main = statements[-1]
    if len(statements) > 1:
        main = main.add_cte(*(s.cte(f"w{n}") for n, s in enumerate(statements[:-1])))
    compiled = main.compile(dialect=DIALECT)
    extra = set(compiled.positiontup) - set(where)
    if extra:  # a column default SQLAlchemy would have added: every row must give every column
        raise ValueError(f"rows of shape {shape} leave columns to their defaults: {sorted(extra)}")
    return str(compiled).encode(), [where[name] for name in compiled.positiontup]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime refused; use aware UTC datetimes")
    return value.astimezone(timezone.utc)


def write(conn: Connection | Direct, batch: Batch) -> None:
    """Insert ``batch`` (tables in order, each with rows of one set of columns) in one statement, in the
    transaction of ``conn`` (a SQLAlchemy connection on psycopg), by ``run_raw``."""
    batch = [(table, rows) for table, rows in batch if rows]
    shape = tuple((table.name, tuple(rows[0]), len(rows)) for table, rows in batch)
    found = _by_shape.get(shape)
    if found is None:
        with _lock:
            found = _by_shape.get(shape) or _build(batch, shape)
            _by_shape[shape] = found
    sql, sources = found
    params = []
    for n, i, column, kind in sources:
        value = batch[n][1][i][column]
        params.append(value if kind == _PLAIN else _utc(value) if kind == _TIME else Json(value, jsoncodec.dumps_bytes))
    run_raw(conn, sql, params)


def compile_raw(stmt) -> tuple[bytes, tuple[str, ...], dict]:
    """``stmt`` compiled once for ``run_raw``: its SQL with ``$n`` placeholders, the names of its parameters in
    placeholder order, and the values of those it fixes itself (literals SQLAlchemy bound, such as ``1``)."""
    compiled = stmt.compile(dialect=DIALECT)
    constants = {k: v for k, v in compiled.construct_params(_check=False).items() if v is not None}
    return str(compiled).encode(), tuple(compiled.positiontup), constants


class Direct:
    """A pooled psycopg connection of an autocommit engine, as ``write`` and ``run_raw`` take it (what they
    use of a SQLAlchemy ``Connection``: ``connection.dbapi_connection``, ``dialect``, ``invalidate``).  Each
    statement on it is its own transaction: no BEGIN and no COMMIT to send."""

    __slots__ = ("connection", "dialect")

    def __init__(self, pooled, dialect) -> None:
        self.connection, self.dialect = pooled, dialect

    def invalidate(self, exc: BaseException) -> None:
        self.connection.invalidate(exc)


@contextlib.contextmanager
def direct(engine: Engine) -> Iterator[Direct]:
    """A connection of ``engine`` (an autocommit pool) for ``write`` / ``run_raw``, back to the pool after."""
    pooled = engine.raw_connection()
    try:
        yield Direct(pooled, engine.dialect)
    finally:
        pooled.close()


def run_raw(conn: Connection | Direct, sql: bytes, params: list, *, row_factory=None) -> list | None:
    """Run ``sql`` (``$n`` placeholders, compiled with ``DIALECT``) as it is on a psycopg ``RawCursor`` of
    ``conn``'s connection, in its transaction; the rows when ``row_factory`` is given.  Driver errors come
    out as SQLAlchemy's (``IntegrityError`` for a duplicate); a connection found dead is invalidated."""
    dbapi_conn = conn.connection.dbapi_connection
    try:
        with RawCursor(dbapi_conn, **({"row_factory": row_factory} if row_factory else {})) as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if row_factory else None
    except conn.dialect.loaded_dbapi.Error as exc:
        dead = conn.dialect.is_disconnect(exc, dbapi_conn, None)
        if dead:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error, connection_invalidated=dead,
                                  dialect=conn.dialect) from exc
