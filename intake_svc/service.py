"""Intake use cases.  Plain functions with an explicit session; they never commit."""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from types import SimpleNamespace
from typing import Callable, TypeVar

from psycopg.rows import namedtuple_row, tuple_row
from sqlalchemy import Engine, Select, bindparam, event, insert, literal_column, select, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from intake_svc import pgwrite
from intake_svc.detection import (CANDIDATE_COLUMNS, Detection, candidates_select, detect, judge,
                                  person_key)
from intake_svc.domain.rules import PURPOSES, is_group_visit, level_of_prefix
from intake_svc.models import DisplaySequence, Petition, PetitionChange, Petitioner
from intake_svc.pii import PiiVault
from shared import clock
from shared.auth import Principal
from shared.calendar import local_date
from shared.contracts import CaseStatusChanged, PetitionRegistered, comes_after
from shared.db import create_db_engine, new_id
from shared.outbox import EMIT_BATCH, OUTBOX_WRITTEN, outbox_rows
from shared.regions import subtree_prefix
from shared.runtime import ServiceRuntime

T = TypeVar("T")
#: Shown instead of the petitioner's name where it must not travel (检举控告, 保密).
WITHHELD = "（保密）"


@dataclass(frozen=True)
class Registration:
    #: The stored petition: the ORM instance when it existed, else its column values (and
    #: ``petitioners``) as attributes of a plain read-only record.
    petition: Petition | SimpleNamespace
    existing: bool
    #: (identity number, phone) in clear per petitioner, when this call stored them: the response
    #: masks these instead of decrypting what was just encrypted.
    plain: tuple[tuple[str | None, str | None], ...] = ()


def next_display_no(session: Session | Engine, region_code: str, tz: str) -> str:
    """``{region6}{YYYYMMDD}{seq}``: unique, gap-tolerant, one counter per region and local day.

    On PostgreSQL the counter is bumped in its own autocommit statement, so its row lock is held
    for that statement only, not across the whole registration (a rolled-back registration
    leaves a gap, which is allowed).  The statement runs on a small pool of connections that are
    always in autocommit (``_autocommit_engine``): no isolation switch, reset or ping per call.
    SQLite has one writer at a time anyway: same transaction.  ``session`` may be the engine
    (PostgreSQL, ``register_direct``).
    """
    region6, day = _counter_key(region_code, tz)
    bind = session.get_bind() if isinstance(session, Session) else session
    if bind.dialect.name == "postgresql":
        engine = _autocommit_engine(bind.engine)
        seq = _retried(lambda: _bump_counter(engine, region6, day))
    else:
        seq = session.execute(_SEQUENCE_UPSERT["sqlite"], {"region6": region6, "day": day}).scalar_one()
    return f"{region6}{day}{seq:04d}"


def _counter_key(region_code: str, tz: str) -> tuple[str, str]:
    """The display-number counter of a registration now: (region6, local day as YYYYMMDD)."""
    return region_code[:6], local_date(clock.now(), tz).strftime("%Y%m%d")


def _retried(call: Callable[[], T]) -> T:
    """``call()``, once more if its pooled connection was found dead in use (and invalidated)."""
    try:
        return call()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        return call()


def _number_and_candidates(engine: Engine, region_code: str, tz: str, column: str, blinds: list[str],
                           since: datetime) -> tuple[str, list]:
    """PostgreSQL: the display number (``next_display_no``) and detection's candidates (``detection.
    candidates_select``) in ONE autocommit statement on the counter's pool (``_number_and_candidates_sql``)."""
    region6, day = _counter_key(region_code, tz)
    sql, order, constants = _number_and_candidates_sql(column, len(blinds))
    values = dict(constants, region6=region6, day=day, since=since.astimezone(timezone.utc))
    values.update((f"blind_{i}", blind) for i, blind in enumerate(blinds))
    with pgwrite.direct(_autocommit_engine(engine)) as conn:
        rows = pgwrite.run_raw(conn, sql, [values[name] for name in order], row_factory=namedtuple_row)
    return f"{region6}{day}{rows[0].seq:04d}", [row for row in rows if row.id is not None]


@lru_cache(maxsize=64)
def _number_and_candidates_sql(column: str, count: int) -> tuple[bytes, tuple[str, ...], dict]:
    """The counter upsert as a CTE and the candidate query joined to one row, so that the statement answers
    even without candidates::

        WITH bump AS (INSERT INTO display_sequences … ON CONFLICT … DO UPDATE … RETURNING last)
        SELECT (SELECT last FROM bump) AS seq, c.* FROM (SELECT 1) AS one LEFT JOIN (candidates) AS c ON true
        ORDER BY c.at DESC

    The bump is an InitPlan, run when the first row is formed, after the candidates are read and sorted:
    the counter row stays locked only for the end of the statement and its commit (not waiting for the WAL
    flush on this pool), as with the bump on its own.  Compiled once per shape with ``$n`` placeholders;
    returns the SQL, the order of its parameters and the constant ones."""
    bump = _SEQUENCE_UPSERT["postgresql"].cte("bump")
    candidates = candidates_select(column, count, Petition.__table__.c.registered_at.label("at")).subquery("c")
    one = select(literal_column("1").label("one")).subquery("one")
    stmt = (select(select(bump.c.last).scalar_subquery().label("seq"),
                   *(candidates.c[c.name] for c in CANDIDATE_COLUMNS))
            .select_from(one.outerjoin(candidates, true())).order_by(candidates.c.at.desc()))
    return pgwrite.compile_raw(stmt)


def _bump_counter(engine: Engine, region6: str, day: str) -> int:
    """The counter upsert straight on a pooled DBAPI connection of the autocommit pool (one statement,
    nothing for a SQLAlchemy ``Connection`` to manage: no begin, no rollback on release), by
    ``pgwrite.run_raw``: driver errors come out as SQLAlchemy's, a connection found dead is invalidated."""
    sql, order, constants = _SEQUENCE_RAW
    values = dict(constants, region6=region6, day=day)
    with pgwrite.direct(engine) as conn:
        return pgwrite.run_raw(conn, sql, [values[name] for name in order], row_factory=tuple_row)[0][0]


def _sequence_upsert(insert_fn):
    table = DisplaySequence.__table__
    return (insert_fn(table).values(region6=bindparam("region6"), day=bindparam("day"), last=1)
            .on_conflict_do_update(index_elements=["region6", "day"], set_={"last": table.c.last + 1})
            .returning(table.c.last))


#: The counter upsert, built once per dialect (statement construction costs more than its execution).
_SEQUENCE_UPSERT = {"postgresql": _sequence_upsert(pg_insert), "sqlite": _sequence_upsert(sqlite_insert)}
#: PostgreSQL: the same upsert compiled for ``pgwrite.run_raw``.
_SEQUENCE_RAW = pgwrite.compile_raw(_SEQUENCE_UPSERT["postgresql"])
_autocommit_engines: dict[tuple[int, bool], Engine] = {}
_autocommit_lock = threading.Lock()


def _autocommit_engine(engine: Engine, *, synchronous: bool = False) -> Engine:
    """A second pool on the same database whose connections stay in autocommit (one per service engine
    and kind), without SQLAlchemy's pre-ping (a connection that idled is pinged, ``create_db_engine``).

    Both keep as many connections as the service engine (``create_db_engine``'s 10): every web thread may
    use one at once, and a pool smaller than that closes the connections it cannot keep (its overflow) on
    their return, so under load each use opened a new one (a PostgreSQL backend forked per registration).

    ``synchronous=False``, the display-number counter's: its commits do not wait for the WAL
    flush (``synchronous_commit=off``; under load that wait was most of a registration's time in
    PostgreSQL).  That loses nothing: a bump is only ever used by a registration that commits later,
    synchronously, and that flush writes the WAL up to its own commit record, which includes the earlier
    bump.  A bump lost in a server crash therefore only belongs to a registration that was never stored;
    re-issuing its number after recovery is safe (and ``petitions.display_no`` is unique besides).
    ``synchronous=True``, ``register_direct``'s writes: commits as usual."""
    key = (id(engine), synchronous)
    found = _autocommit_engines.get(key)
    if found is not None and found.url == engine.url:
        return found
    with _autocommit_lock:
        found = _autocommit_engines.get(key)
        if found is None or found.url != engine.url:
            options = {} if synchronous else {"connect_args": {"options": "-c synchronous_commit=off"}}
            found = create_db_engine(engine.url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT",
                                     pool_pre_ping=False, pool_reset_on_return=None, **options)
            _autocommit_engines[key] = found
            event.listen(engine, "engine_disposed", lambda _e: _drop_autocommit_engine(key, found))
            weakref.finalize(engine, _drop_autocommit_engine, key, found)
        return found


def _drop_autocommit_engine(key: tuple[int, bool], engine: Engine) -> None:
    """Dispose of the autocommit pool with its service engine (``runtime.close()``) or when that is collected."""
    if _autocommit_engines.get(key) is engine:
        del _autocommit_engines[key]
    engine.dispose()


def find_by_county_no(session: Session, system: str, county_no: str) -> Petition | None:
    found = session.scalar(select(Petition.id).where(Petition.system == system, Petition.county_no == county_no))
    return session.get(Petition, found) if found is not None else None


def petition_row(fields: dict, *, display_no: str, found, petition_id: str | None = None) -> dict:
    """The petitions row of a new registration: its fields, a new id, the display number and what detection
    found (重复/回流/越级/不再受理), no case status yet; a repeat is not a first petition."""
    row = dict(fields, id=petition_id or new_id(), display_no=display_no,
               repeat_of=found.repeat_of, repeat_of_display_no=found.repeat_of_display_no,
               repeat_score=found.repeat_score, repeat_reasons=found.repeat_reasons, reflow=found.reflow,
               cross_level=found.cross_level, no_longer_accepted=found.no_longer_accepted,
               case_status="", case_resolved=False, case_final=False, case_updated_at=None, case_seq=None)
    if found.repeat_of:
        row["first_time"] = False
    return row


def register_petition(session: Session, runtime: ServiceRuntime, *, data: dict, principal: Principal,
                      vault: PiiVault, assume_new: bool = False,
                      with_rows: Callable[[Registration], pgwrite.Batch] | None = None) -> Registration:
    """Register a petition and announce it (petition.registered), in the caller's transaction.

    A resend of the same (system, county_no) returns the existing petition, marked existing.
    ``assume_new`` skips that lookup: the unique constraint then raises IntegrityError on a
    resend, and the caller retries without it (cheaper when resends are rare).
    ``with_rows``: called with a new registration before anything is written; the ``(table, rows)``
    it returns (the idempotency record) are inserted with the registration's rows.  On PostgreSQL
    all of them, the outbox rows included, are ONE statement (``pgwrite``): one round trip.
    """
    if data.get("county_no") and not assume_new:
        found = find_by_county_no(session, data["system"], data["county_no"])
        if found is not None:
            return Registration(found, existing=True)
    draft = _Draft(runtime, data, principal, vault)
    found = detect(session, fields=draft.fields, id_blinds=draft.id_blinds, phone_blinds=draft.phone_blinds,
                   registrar_level=draft.registrar_level, window_days=runtime.settings.repeat_window_days)
    registration, batch, event = draft.rows(found, next_display_no(session, data["region_code"],
                                                                  runtime.settings.timezone), with_rows)
    conn = session.connection()  # Core inserts on the session's connection: no ORM execution layer
    if conn.dialect.name == "postgresql" and session.info.get(EMIT_BATCH) is None:
        pgwrite.write(conn, draft.with_outbox(batch, event))  # one statement for every row
        session.info[OUTBOX_WRITTEN] = True  # the commit wakes the relay, as emit's INSERT would
        return registration
    for table, rows in batch:
        if rows:
            conn.execute(_INSERTS[table.name] if table.name in _INSERTS else insert(table).inline(), rows)
    runtime.emit(session, event)
    return registration


def register_direct(runtime: ServiceRuntime, *, data: dict, principal: Principal, vault: PiiVault,
                    with_rows: Callable[[Registration], pgwrite.Batch] | None = None) -> Registration:
    """PostgreSQL: ``register_petition(..., assume_new=True)`` without a transaction block, in two
    statements each of which is its own transaction: the display-number bump with the detection query
    (``_number_and_candidates``, on the counter's pool) and the one statement that writes every row
    (``pgwrite``), all or nothing.

    A transaction around them would add nothing: at READ COMMITTED each statement sees its own snapshot
    anyway, and the only writes are the one statement's.  Leaving it out saves the BEGIN and the COMMIT
    round trips and the session's bookkeeping: under load a fifth of a registration's CPU.  A resend of
    the same (system, county_no) or Idempotency-Key raises ``IntegrityError`` with nothing written, as
    with ``assume_new``; the caller then goes the transactional way (``register_petition``)."""
    draft = _Draft(runtime, data, principal, vault)
    settings = runtime.settings
    column, blinds = person_key(draft.id_blinds, draft.phone_blinds)
    if blinds:
        since = clock.now() - timedelta(days=settings.repeat_window_days)
        display_no, candidates = _retried(lambda: _number_and_candidates(
            runtime.engine, data["region_code"], settings.timezone, column, blinds, since))
    else:
        display_no, candidates = next_display_no(runtime.engine, data["region_code"], settings.timezone), []
    found = judge(candidates, fields=draft.fields, registrar_level=draft.registrar_level)
    registration, batch, event = draft.rows(found, display_no, with_rows)
    with pgwrite.direct(_autocommit_engine(runtime.engine, synchronous=True)) as conn:
        pgwrite.write(conn, draft.with_outbox(batch, event))
    if runtime.relay is not None:
        runtime.relay.kick()  # as the session's commit does (``after_commit_kick``)
    return registration


class _Draft:
    """A new registration's values before detection and numbering: the petition's fields, the petitioners
    with their identity numbers and phones in clear and blind-indexed, the registrar's level."""

    def __init__(self, runtime: ServiceRuntime, data: dict, principal: Principal, vault: PiiVault) -> None:
        settings = runtime.settings
        now = clock.now()
        category = data["category"]
        self.runtime, self.vault = runtime, vault
        self.registrar_level = registrar_level = level_of_prefix(subtree_prefix(principal.jurisdiction))
        fields = {k: data[k] for k in ("system", "county_no", "channel", "purpose", "petitioned_at", "people_count",
                                       "title", "request_text", "facts", "region_code", "complained_party",
                                       "legal_litigation", "urgent", "anonymous", "confidential", "first_time")}
        # stored and answered in UTC, as every read of the petition answers them
        fields["petitioned_at"] = data["petitioned_at"].astimezone(timezone.utc)
        registered_at = data.get("registered_at")
        fields.update(category_code=category.code, category_name=category.name, classic_code=category.classic_code,
                      category_table_version=category_version(),
                      registered_at=registered_at.astimezone(timezone.utc) if registered_at else now,
                      received_at=now, statutory_type=PURPOSES[data["purpose"]],
                      registrar=principal.username or principal.user_id,
                      registrar_kind="api_key" if principal.role == "county_system" else "staff",
                      registrar_level=registrar_level,
                      group_visit=is_group_visit(channel=data["channel"], people_count=data["people_count"],
                                                 threshold=settings.group_visit_threshold))
        self.fields = fields
        self.people = data.get("petitioners") or []
        self.plain = tuple((p.get("id_number"), p.get("phone")) for p in self.people)
        self.blinds = [(vault.blind(id_number), vault.blind(phone)) for id_number, phone in self.plain]
        self.id_blinds = [b for b, _ in self.blinds if b]
        self.phone_blinds = [b for _, b in self.blinds if b]

    def rows(self, found: Detection, display_no: str, with_rows: Callable[[Registration], pgwrite.Batch] | None
             ) -> tuple[Registration, pgwrite.Batch, PetitionRegistered]:
        """The registration as the caller reads it back, the rows to write in order (petition, petitioners,
        history, the caller's rows from ``with_rows``) and the event that announces it."""
        vault = self.vault
        row = petition_row(self.fields, display_no=display_no, found=found)
        person_rows = [{"petition_id": row["id"], "seq": seq, "name": person.get("name") or "",
                        "id_number_enc": vault.seal(id_number), "id_blind": id_blind,
                        "phone_enc": vault.seal(phone), "phone_blind": phone_blind,
                        "address_code": person.get("address_code"), "address": person.get("address") or "",
                        "registered_at": row["registered_at"]}
                       for seq, (person, (id_number, phone), (id_blind, phone_blind))
                       in enumerate(zip(self.people, self.plain, self.blinds, strict=True))]
        change = {"petition_id": row["id"], "at": clock.now(), "actor": row["registrar"], "action": "registered",
                  "changes": {"display_no": row["display_no"], "detection": found.as_dict()}}
        # What the caller reads back (response, event): the stored values as plain attributes; ORM
        # instances would cost more to build than the inserts and are never flushed anyway.
        petition = SimpleNamespace(**row, petitioners=[SimpleNamespace(**p) for p in person_rows])
        registration = Registration(petition, existing=False, plain=self.plain)
        extra = with_rows(registration) if with_rows is not None else []
        return (registration, [(_PETITIONS, [row]), (_PETITIONERS, person_rows), (_CHANGES, [change]), *extra],
                registered_event(petition, found))

    def with_outbox(self, batch: pgwrite.Batch, event: PetitionRegistered) -> pgwrite.Batch:
        """``batch`` and the event's outbox rows, for ``pgwrite.write`` (the statement's main INSERT last)."""
        runtime = self.runtime
        return [*batch, (runtime.outbox_model.__table__, outbox_rows([event], producer=runtime.name))]


_PETITIONS, _PETITIONERS, _CHANGES = Petition.__table__, Petitioner.__table__, PetitionChange.__table__
#: ``inline()``: no RETURNING of the generated integer keys (nothing reads them back).
_INSERTS = {table.name: insert(table).inline() for table in (_PETITIONS, _PETITIONERS, _CHANGES)}


def category_version() -> str:
    from intake_svc.schemas import categories

    return categories().version


def classic_name(classic_code: str) -> str:
    """The classic first-level category name (城乡建设 …) that routing and statistics speak."""
    from intake_svc.schemas import categories

    found = categories().get(classic_code)
    return found.name if found is not None else classic_code


def registered_event(petition: Petition, found: Detection) -> PetitionRegistered:
    main = petition.petitioners[0].name if petition.petitioners else ""
    withhold = petition.confidential or petition.statutory_type == "检举控告类" or petition.anonymous
    return PetitionRegistered(
        petition_id=petition.id, display_no=petition.display_no, system=petition.system,
        county_no=petition.county_no, region_code=petition.region_code, category=classic_name(petition.classic_code),
        channel=petition.channel, request_text=petition.request_text,
        petitioner_name=WITHHELD if withhold else (main or "（未登记）"), registered_at=petition.registered_at,
        flags={"repeat_of": found.repeat_of, "reflow": found.reflow, "cross_level": found.cross_level,
               "no_longer_accepted": found.no_longer_accepted},
        category_code=petition.category_code, classic_code=petition.classic_code, title=petition.title,
        purpose=petition.purpose, statutory_type=petition.statutory_type,
        legal_litigation=petition.legal_litigation, group_visit=petition.group_visit, urgent=petition.urgent,
        people_count=petition.people_count, confidential=petition.confidential,
        registrar_level=petition.registrar_level, petitioned_at=petition.petitioned_at)


def record_change(session: Session, petition: Petition, *, actor: str, action: str, changes: dict) -> None:
    session.add(PetitionChange(petition_id=petition.id, at=clock.now(), actor=actor, action=action,
                               changes=changes))


def apply_case_status(session: Session, event: CaseStatusChanged) -> Petition | None:
    """Follow the case of a petition (办理状态), so later registrations can detect 回流 and 不再受理.

    The case's position is (``case_updated_at``, ``case_seq``): several actions share one instant (受理 +
    送达受理告知书, the 逐级审签 sign-offs) and their events may arrive in either order, so of two changes
    at one instant the one with the higher seq wins.  A change that is not newer does not move the status
    (an older one arriving late); one that carries a seq still sets the flags ``case_resolved`` /
    ``case_final`` (they only ever turn on) and is written to the history (变更记录).  With a seq the
    history's ``from`` is the case's own previous status (``previous_status``), so neither the history
    nor the flags depend on the delivery order.  Without a seq on either side, changes at one instant
    apply in arrival order and ``from`` is the status intake had (the rules before seq existed).
    """
    petition = session.get(Petition, event.petition_id)
    if petition is None:
        return None
    newer = comes_after(event.changed_at, event.seq, petition.case_updated_at, petition.case_seq)
    if not newer and event.seq is None:
        return petition  # an older event arriving late
    before = petition.case_status if event.seq is None else event.previous_status
    if newer:
        petition.case_status, petition.case_updated_at = event.status, event.changed_at
        petition.case_seq = event.seq
    petition.case_resolved = event.resolved or petition.case_resolved  # the flags only ever turn on
    petition.case_final = event.final or petition.case_final
    record_change(session, petition, actor=event.actor, action="case_status",
                  changes={"from": before, "to": event.status, "reason": event.reason})
    return petition


def filtered(query: dict, jurisdiction: str) -> Select:
    """Petitions in the caller's jurisdiction matching the list filters, newest first."""
    stmt = select(Petition).where(Petition.region_code.startswith(subtree_prefix(jurisdiction)))
    if "region" in query:
        stmt = stmt.where(Petition.region_code.startswith(subtree_prefix(query["region"])))
    if "category" in query:
        stmt = stmt.where(Petition.category_code.startswith(query["category"]))
    if "channel" in query:
        stmt = stmt.where(Petition.channel == query["channel"])
    for flag in query.get("flag", []):
        stmt = stmt.where(Petition.repeat_of.is_not(None) if flag == "repeat" else getattr(Petition, flag).is_(True))
    if "registered_from" in query:
        stmt = stmt.where(Petition.registered_at >= query["registered_from"])
    if "registered_to" in query:
        stmt = stmt.where(Petition.registered_at < query["registered_to"])
    return stmt.order_by(Petition.registered_at.desc(), Petition.id)
