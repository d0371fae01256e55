"""Bulk writes for batches of fresh rows, without the ORM (批量写入).

``bulk_insert`` appends rows as one ``COPY … FROM STDIN`` on PostgreSQL and one DBAPI executemany on SQLite;
``insert_ignoring`` inserts rows ``ON CONFLICT (…) DO NOTHING`` in one statement and returns the keys of the
rows actually written.  Every value is first passed through its column type's bind processor exactly as a
Core INSERT would (aware datetimes -> UTC, JSON -> text), so what the ORM reads back is the same.
"""
from __future__ import annotations

import functools
import json
import operator
from datetime import datetime

from sqlalchemy import JSON, Table
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from shared.db import UTCDateTime, is_postgres


def _processors(table: Table, names: list[str], dialect) -> list[tuple[int, object]]:
    processors = []
    for i, name in enumerate(names):
        process = table.c[name].type._cached_bind_processor(dialect)
        if process is not None and isinstance(table.c[name].type, UTCDateTime):
            process = functools.lru_cache(maxsize=64)(process)  # the rows of a batch share a few instants
        if process is not None:
            processors.append((i, process))
    return processors


def bulk_insert(session: Session, table: Table, rows: list[dict]) -> None:
    """Insert ``rows`` (all with the same keys) into ``table`` in the session's transaction.

    PostgreSQL: one ``COPY … FROM STDIN`` — for plain appends of fresh rows only (no ON CONFLICT: a duplicate
    key fails the COPY as it would fail the INSERT, raised as SQLAlchemy's IntegrityError); SQLite: one DBAPI
    executemany INSERT (no per-row parameter compilation).  Pending ORM objects are not flushed first."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = list(rows[0])
    processors = _processors(table, names, dialect)
    take = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))

    def values(row: dict) -> tuple:
        out = list(take(row))
        for i, process in processors:
            out[i] = process(out[i])
        return tuple(out)

    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    target = dialect.identifier_preparer.format_table(table)
    if not is_postgres(session):
        connection.exec_driver_sql(f"INSERT INTO {target} ({quoted}) VALUES ({', '.join('?' * len(names))})",
                                   [values(row) for row in rows])
        return
    sql = f"COPY {target} ({quoted}) FROM STDIN"
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(values(row))
    except dialect.loaded_dbapi.Error as exc:  # as an INSERT would fail: IntegrityError etc.
        raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error) from exc
    finally:
        cursor.close()


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def insert_ignoring(session: Session, table: Table, rows: list[dict], *, conflict: str, returning: str) -> set:
    """INSERT ``rows`` (all with the same keys) ``ON CONFLICT (conflict) DO NOTHING`` in one statement;
    returns the ``returning`` column of the rows actually inserted.

    PostgreSQL: ``INSERT … SELECT … FROM jsonb_to_recordset(%s)`` — the whole batch as ONE JSON document (the
    C JSON encoder on this side, one parameter to bind, parse and plan on the server, whatever the number of
    rows), each column cast back to its type.  SQLite: a Core executemany INSERT … RETURNING."""
    if not rows:
        return set()
    if not is_postgres(session):
        stmt = sqlite_insert(table).on_conflict_do_nothing(index_elements=[conflict]).returning(table.c[returning])
        return set(session.execute(stmt, rows).scalars())
    connection = session.connection()
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    names = list(rows[0])
    # JSON columns go into the document as they are (typed json in the record set); the rest through the
    # column's bind processor, then as JSON scalars (datetimes as ISO 8601 with their offset).
    is_json = [isinstance(table.c[name].type, JSON) for name in names]
    processors = [(i, p) for i, p in _processors(table, names, dialect) if not is_json[i]]
    records = []
    for row in rows:
        out = [row[name] for name in names]
        for i, process in processors:
            out[i] = process(out[i])
        records.append({f"c{i}": _json_value(v) for i, v in enumerate(out)})
    compiled = [table.c[name].type.compile(dialect=dialect) for name in names]
    fields = ", ".join(f"c{i} {c}" for i, c in enumerate(compiled))
    select_list = ", ".join(f"c{i}" for i in range(len(names)))
    sql = (f"INSERT INTO {dialect.identifier_preparer.format_table(table)} ({', '.join(quote(n) for n in names)}) "
           f"SELECT {select_list} FROM jsonb_to_recordset(%(rows)s::jsonb) AS r({fields}) "
           f"ON CONFLICT ({quote(conflict)}) DO NOTHING RETURNING {quote(returning)}")
    document = json.dumps(records, ensure_ascii=False)
    return set(connection.exec_driver_sql(sql, {"rows": document}).scalars())
