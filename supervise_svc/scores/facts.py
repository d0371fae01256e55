"""The scorecard's per-case month facts (月度计分事实): what each case contributes to each local month.

A month's 三率三色 counts read ``supervise_score_facts`` only: ONE ``GROUP BY prefix`` over the rows of
that month (an index on ``month``), boolean columns counted with ``COUNT(*) FILTER``.  Before, the
counting filtered every case view on seven timestamp ranges and joined the stage rows of multi-row
cases; now the projection keeps, per case and per local month in which something of the case counts,
one narrow row:

* registered in the month: ``registered`` and the petition's ``repeat`` / ``visit`` / ``cross_level_visit``;
* graded in the month (``evaluation_grade`` set): ``evaluated``, ``satisfied`` (满意 / 基本满意);
* 办结 in the month: ``closed``, ``resolved`` (化解), ``judged`` (a 检举控告 / 申诉求决 case whose truth was
  decided) and ``substantiated`` (属实 / 部分属实);
* the deadlines due in the month, per metric — 受理告知 (``a_``) and 办理 + 交办办理 (``h_``): ``_closed``
  some stage due in the month was closed, ``_late`` one was closed after its due, ``_open_due`` the
  earliest due of a stage due in the month still open (whether it counts depends on the instant the
  month is judged at: ``_open_due < as_of``); ``e_expired``: an evaluation window due in the month
  expired with no grade (超期未评价).

The deadline stages come from the case view's slots (``acceptance_due_at`` …) or, for a case with several
rows of a kind (``deadline_rows``), from its stage rows: every case, one way.  涉法涉诉 cases have no
facts (they are outside the rates).  The counts equal those of ``aggregate.month_counts`` (the slots +
multi-row stages) and ``aggregate.month_counts_joined`` (every deadline from the stage rows): the tests
compare them on every path.

Kept current by session hooks: each flush notes the cases whose view changed in a column read here (or
whose scored stage rows changed); before the commit their facts are recomputed from what the transaction
wrote (one SELECT, one DELETE, one INSERT for all of them; ``settle`` does it earlier for a reader in the
same transaction).  Core UPDATEs of those columns call ``refresh`` themselves;
``rebuild_all`` recomputes every case (migration, projection rebuild, bulk loads).  Months are local
months of ``TIMEZONE`` (``configure``; the service's ``XINFANG_TIMEZONE``).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import delete, event, func, insert, select
from sqlalchemy.orm import Session, attributes

from supervise_svc.models import CaseStageView, CaseView, ScoreFact
from supervise_svc.scores.aggregate import SATISFIED, SUBSTANTIATED, TRUTH_TYPES

#: Stage kind -> metric prefix of the deadline facts.
METRIC = {"acceptance_notice": "a", "handling": "h", "assigned": "h", "evaluation": "e"}
#: The case view's slot columns, as (kind, due column, closed column).
SLOTS = (("acceptance_notice", "acceptance_due_at", "acceptance_closed_at"),
         ("handling", "handling_due_at", "handling_closed_at"),
         ("assigned", "assigned_due_at", "assigned_closed_at"),
         ("evaluation", "evaluation_due_at", None))
FLAGS = ("registered", "repeat", "visit", "cross_level_visit", "evaluated", "satisfied", "closed", "resolved",
         "judged", "substantiated", "a_closed", "a_late", "h_closed", "h_late", "e_expired")
#: The case view columns the facts are computed from: a change to another column leaves them as they are.
VIEW_COLUMNS = ("petition_id", "region_code", "legal_litigation", "registered_at", "repeat_of", "channel",
                "cross_level", "evaluated_at", "evaluation_grade", "evaluation_expired", "closed_at", "resolution",
                "statutory_type", "truth", "deadline_rows",
                *(c for _, due, closed in SLOTS for c in (due, closed) if c))
#: The local time zone of the months (the service configures it from its settings).
TIMEZONE = "Asia/Shanghai"
_zone = ZoneInfo(TIMEZONE)


def configure(tz: str) -> None:
    """Months are local months of ``tz`` (the service's ``timezone`` setting)."""
    global TIMEZONE, _zone
    TIMEZONE, _zone = tz, ZoneInfo(tz)


def month_key(instant: datetime, zone: ZoneInfo | None = None) -> int:
    """YYYYMM of the local month ``instant`` falls in."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=timezone.utc)
    local = instant.astimezone(zone or _zone)
    return local.year * 100 + local.month


def case_facts(view: Mapping, stages: Iterable[tuple] | None = None, zone: ZoneInfo | None = None) -> list[dict]:
    """The fact rows of one case: ``view`` has ``VIEW_COLUMNS``; ``stages`` the (kind, due_at, closed_at)
    of its scored stage rows, read only when ``view["deadline_rows"]`` (else the view's slots are its rows)."""
    if view["legal_litigation"]:
        return []
    zone = zone or _zone
    months: dict[int, dict] = {}

    def row(instant: datetime) -> dict:
        key = month_key(instant, zone)
        found = months.get(key)
        if found is None:
            found = months[key] = dict.fromkeys(FLAGS, False)
            found.update(month=key, a_open_due=None, h_open_due=None)
        return found

    if view["registered_at"] is not None:
        r = row(view["registered_at"])
        visit = view["channel"] == "来访"
        r.update(registered=True, repeat=view["repeat_of"] is not None, visit=visit,
                 cross_level_visit=visit and bool(view["cross_level"]))
    grade = view["evaluation_grade"]
    if view["evaluated_at"] is not None and grade is not None:
        row(view["evaluated_at"]).update(evaluated=True, satisfied=grade in SATISFIED)
    if view["closed_at"] is not None:
        judged = view["statutory_type"] in TRUTH_TYPES and view["truth"] is not None
        row(view["closed_at"]).update(closed=True, resolved=view["resolution"] == "resolved", judged=judged,
                                      substantiated=judged and view["truth"] in SUBSTANTIATED)
    if view["deadline_rows"]:
        triples = [(kind, due, closed) for kind, due, closed in stages or () if kind in METRIC]
    else:
        triples = [(kind, view[due], view[closed] if closed else None) for kind, due, closed in SLOTS]
    expired = bool(view["evaluation_expired"]) and grade is None
    for kind, due, closed in triples:
        if due is None:
            continue
        metric = METRIC[kind]
        if metric == "e":
            if expired:
                row(due)["e_expired"] = True
            continue
        r = row(due)
        if closed is None:
            earliest = r[f"{metric}_open_due"]
            r[f"{metric}_open_due"] = due if earliest is None or due < earliest else earliest
        else:
            r[f"{metric}_closed"] = True
            if closed > due:
                r[f"{metric}_late"] = True
    prefix = view["region_code"][:9]
    for r in months.values():
        r["petition_id"], r["prefix"] = view["petition_id"], prefix
    return list(months.values())


def _facts_of(session: Session, petition_ids: list[str]) -> list[dict]:
    """The facts of the given cases from what is in the database now (multi-row cases' stage rows too)."""
    cv, s = CaseView.__table__, CaseStageView.__table__
    rows: list[dict] = []
    for i in range(0, len(petition_ids), 500):
        chunk = petition_ids[i:i + 500]
        views = [dict(v._mapping) for v in session.execute(
            select(*(cv.c[c] for c in VIEW_COLUMNS)).where(cv.c.petition_id.in_(chunk)))]
        multi = [v["petition_id"] for v in views if v["deadline_rows"]]
        stages: dict[str, list] = {}
        if multi:
            for st in session.execute(select(s.c.petition_id, s.c.kind, s.c.due_at, s.c.closed_at)
                                      .where(s.c.petition_id.in_(multi), s.c.kind.in_(tuple(METRIC)))):
                stages.setdefault(st.petition_id, []).append((st.kind, st.due_at, st.closed_at))
        for v in views:
            rows.extend(case_facts(v, stages.get(v["petition_id"])))
    return rows


_NEEDED = frozenset(VIEW_COLUMNS)


def _in_session(views: dict) -> tuple[list[dict], list[str]]:
    """The facts of the cases whose view the flushes handed over with every column read here loaded (no
    SELECT), and the ids left to read.  A multi-row case is always read (its stage rows are)."""
    rows, rest = [], []
    for pid, view in views.items():
        state = attributes.instance_state(view) if view is not None and view is not _GONE else None
        if state is None or not _NEEDED.isdisjoint(state.unloaded) or view.deadline_rows:
            rest.append(pid)
            continue
        rows.extend(case_facts({c: getattr(view, c) for c in VIEW_COLUMNS}))
    return rows, rest


def refresh(session: Session, petition_ids: Iterable[str] | dict) -> int:
    """Recompute the facts of these cases (after a Core UPDATE of their views); the number of fact rows.
    A dict (petition id -> its flushed CaseView or None) lets the views it holds be used as they are."""
    views = petition_ids if isinstance(petition_ids, dict) else {}
    ids = sorted({p for p in petition_ids if p})
    if not ids:
        return 0
    rows, rest = _in_session({p: views.get(p) for p in ids})
    if rest:
        rows += _facts_of(session, rest)
    table = ScoreFact.__table__
    for i in range(0, len(ids), 500):
        session.execute(delete(table).where(table.c.petition_id.in_(ids[i:i + 500])))
    if rows:
        session.execute(insert(table), rows)
    return len(rows)


def rebuild_all(session: Session, *, chunk: int = 20_000) -> int:
    """Recompute the facts of every case (in the order the cases last changed); the number of rows.

    One streamed SELECT of the case views and one of the multi-row cases' stage rows; the rows go in with
    ``shared.bulk.bulk_insert`` (COPY on PostgreSQL) ``chunk`` cases at a time."""
    from shared.bulk import bulk_insert

    with suspended(session):
        session.flush()
    table = ScoreFact.__table__
    session.execute(delete(table))
    cv, st = CaseView.__table__, CaseStageView.__table__
    stages: dict[str, list] = {}
    for r in session.execute(select(st.c.petition_id, st.c.kind, st.c.due_at, st.c.closed_at)
                             .join(cv, cv.c.petition_id == st.c.petition_id)
                             .where(cv.c.deadline_rows.is_(True), st.c.kind.in_(tuple(METRIC)))
                             .order_by(st.c.id)):
        stages.setdefault(r.petition_id, []).append((r.kind, r.due_at, r.closed_at))
    views = session.execute(select(*(cv.c[c] for c in VIEW_COLUMNS)).where(cv.c.legal_litigation.is_(False))
                            .order_by(cv.c.last_event_at, cv.c.registered_at, cv.c.petition_id)
                            .execution_options(yield_per=chunk))
    written = 0
    for part in views.partitions():
        rows = [fact for v in part for fact in case_facts(v._mapping, stages.get(v.petition_id))]
        if rows:
            bulk_insert(session, table, rows)
        written += len(rows)
    return written


# ---------------------------------------------------------------- the session hook


def _changed(obj, names: frozenset) -> bool:
    """Some of ``names`` was set on ``obj`` since it was loaded or flushed (set to the same value counts too:
    the facts are then recomputed for nothing, never missed)."""
    return not names.isdisjoint(attributes.instance_state(obj).committed_state)


_VIEW_ATTRS = frozenset(c for c in VIEW_COLUMNS if c != "petition_id")
_STAGE_ATTRS = frozenset(("kind", "due_at", "closed_at", "deadline_rows"))


#: Noted for a case whose view or stage row was deleted: its facts are computed from a fresh read.
_GONE = object()


def _touched(session: Session) -> dict:
    """petition id -> its CaseView (held until the commit: the identity map alone keeps clean objects only
    weakly) or None, for every case this flush changed in what the facts read."""
    touched: dict[str, CaseView | None] = {}
    for obj in session.new:
        if isinstance(obj, CaseView):
            touched[obj.petition_id] = obj
        elif isinstance(obj, CaseStageView) and obj.kind in METRIC:
            touched.setdefault(obj.petition_id, None)
    for obj in session.dirty:
        if isinstance(obj, CaseView) and _changed(obj, _VIEW_ATTRS):
            touched[obj.petition_id] = obj
        elif isinstance(obj, CaseStageView) and obj.kind in METRIC and _changed(obj, _STAGE_ATTRS):
            touched.setdefault(obj.petition_id, None)
    for obj in session.deleted:
        if isinstance(obj, CaseView | CaseStageView):
            touched[obj.petition_id] = _GONE  # read again: the row may be gone
    return touched


#: ``session.info`` key: set while a bulk path (``rebuild_all`` after it) makes the hook pointless.
SUSPENDED = "score_facts_suspended"


@contextmanager
def suspended(session: Session):
    """No facts recomputed per flush within the block (the caller runs ``rebuild_all`` after it)."""
    session.info[SUSPENDED] = True
    try:
        yield
    finally:
        session.info.pop(SUSPENDED, None)


#: ``session.info`` key: the cases whose facts are due for recomputation before the commit.
PENDING = "score_facts_pending"


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context) -> None:
    """Note the cases this flush changed (the session's state is still pre-flush here)."""
    if session.info.get(SUSPENDED):
        return
    touched = _touched(session)
    if touched:
        pending = session.info.setdefault(PENDING, {})
        for pid, view in touched.items():  # _GONE (read again) outranks a view, a view outranks None
            noted = pending.get(pid)
            if noted is not _GONE and (view is not None or noted is None):
                pending[pid] = view


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """Recompute the noted cases' facts once per transaction, from what its flushes wrote."""
    settle(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING, None)


def settle(session: Session) -> None:
    """Flush, then recompute the facts of every case changed in this transaction so far (the commit does
    it too; a reader of the facts inside the same transaction calls it first)."""
    if session.info.get(SUSPENDED):
        return
    session.flush()
    pending = session.info.pop(PENDING, None)
    if pending:
        refresh(session, pending)


def count_statement(month: int, as_of: datetime):
    """The month's counts per 9-digit prefix: one GROUP BY over the month's facts."""
    f = ScoreFact

    def n(condition):
        return func.count().filter(condition)

    columns = {
        "petitions": n(f.registered), "repeats": n(f.repeat), "visits": n(f.visit),
        "cross_level_visits": n(f.cross_level_visit), "evaluated": n(f.evaluated), "satisfied": n(f.satisfied),
        "closed": n(f.closed), "resolved": n(f.resolved), "truth_judged": n(f.judged),
        "substantiated": n(f.substantiated),
        "acceptance_due": n(f.a_closed | (f.a_open_due < as_of)), "acceptance_bad": n(f.a_late | (f.a_open_due < as_of)),
        "handling_due": n(f.h_closed | (f.h_open_due < as_of)), "handling_bad": n(f.h_late | (f.h_open_due < as_of)),
        "closed_late": n(f.h_late), "evaluation_expired": n(f.e_expired),
    }
    stmt = (select(f.prefix, *(c.label(k) for k, c in columns.items())).where(f.month == month).group_by(f.prefix))
    return stmt, list(columns)
