"""The month's numerators and denominators as SQL aggregates, grouped by problem-location prefix.

ONE GROUP BY over ``case_views`` does the counting, never a Python loop over cases and no join:
grouped by ``substr(region_code, 1, 9)`` (a township's 9-digit prefix; a 6-digit county-level code
stays 6 digits), with conditional sums for the petition, visit, evaluation, closure and truth
counts and — from the deadline slots the projection copies onto the case (``acceptance_due_at``,
``handling_due_at``, ``assigned_due_at``, ``evaluation_due_at`` and their closing times) — the
deadline counts.  A case is one row, so each sum counts distinct cases.

The few cases with more than one stage row of a kind (``deadline_rows``: a reroute, a reopened
cycle) have NULL slots; their deadlines come from their stage rows (which carry the flag too, found
by a partial index on their due), joined to their cases, with ``COUNT(DISTINCT case_id)`` per condition — the former query, restricted.
``month_counts_joined`` keeps the former way for every case: the reference the tests compare with.

Counties are rolled up from the prefixes (first 6 digits) in Python: a few thousand groups at most.
Scope everywhere: 涉法涉诉 excluded (``legal_litigation``); aggregation by 问题属地 (``region_code``).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import and_, case, func, or_, select, text
from sqlalchemy.orm import Session

from supervise_svc.models import CaseStageView, CaseView
from supervise_svc.scores.domain import COUNTS

#: Statutory types whose substantiation (属实率) is judged.
TRUTH_TYPES = ("检举控告类", "申诉求决类")
#: Grades that count as satisfied (满意率).
SATISFIED = ("满意", "基本满意")
#: Truth findings that count as substantiated (属实率).
SUBSTANTIATED = ("属实", "部分属实")
#: PostgreSQL settings for the month's transaction only (SET LOCAL): sorting a month's ~200,000
#: stage rows spills to disk with the default 4 MB, and JIT compilation costs more than it saves on
#: these one-off aggregates.
PG_LOCAL_SETTINGS = {"work_mem": "64MB", "jit": "off"}
#: Stage kinds per deadline metric.
ACCEPTANCE_KINDS = ("acceptance_notice",)
HANDLING_KINDS = ("handling", "assigned")


def _in(column, start: datetime, end: datetime):
    return and_(column >= start, column < end)


def _sum(condition):
    """The number of rows meeting ``condition`` (``COUNT(*) FILTER (WHERE …)``: on PostgreSQL cheaper
    than ``SUM(CASE …)``, and SQLite ≥ 3.30 has it too)."""
    return func.count().filter(condition)


def _deadline_columns(cv, start: datetime, end: datetime, as_of: datetime) -> dict:
    """Conditional sums of the deadline slots (one row per case: each sum counts distinct cases).

    Per slot (due d, closed c) whose due fell in the month: *counted* when closed (on time or late)
    or still open with d before ``as_of``; *bad* when closed after d or open past d; *late* when
    closed after d.  The 办理 metric joins the 办理 and 交办 slots per case (either bad → bad).
    Cases with several rows of a kind have NULL slots (``deadline_rows``) and count nowhere here.
    """
    def slot(due, closed):
        month = _in(due, start, end)
        counted = and_(month, or_(closed.is_not(None), due < as_of))
        late = and_(month, closed > due)
        bad = and_(month, or_(closed > due, and_(closed.is_(None), due < as_of)))
        return counted, bad, late

    a_due, a_bad, _ = slot(cv.acceptance_due_at, cv.acceptance_closed_at)
    h_due, h_bad, h_late = slot(cv.handling_due_at, cv.handling_closed_at)
    g_due, g_bad, g_late = slot(cv.assigned_due_at, cv.assigned_closed_at)
    return {
        "acceptance_due": _sum(a_due), "acceptance_bad": _sum(a_bad),
        "handling_due": _sum(or_(h_due, g_due)), "handling_bad": _sum(or_(h_bad, g_bad)),
        "closed_late": _sum(or_(h_late, g_late)),
        "evaluation_expired": _sum(and_(_in(cv.evaluation_due_at, start, end), cv.evaluation_expired.is_(True),
                                        cv.evaluation_grade.is_(None))),
    }


def _derive(counts: dict[str, int]) -> dict[str, int]:
    """The stored counts from the due / bad / late sums (on time = due − bad, overdue only = bad − late)."""
    a_bad, h_bad = counts.pop("acceptance_bad"), counts.pop("handling_bad")
    counts["accepted_on_time"] = counts["acceptance_due"] - a_bad
    counts["closed_on_time"] = counts["handling_due"] - h_bad
    counts["open_overdue"] = h_bad - counts["closed_late"]
    return counts


def case_counts(session: Session, start: datetime, end: datetime, as_of: datetime, *,
                deadlines: bool = True) -> dict[str, dict[str, int]]:
    """prefix -> every count but the multi-row cases' deadlines: ONE GROUP BY over ``case_views``.

    The petition, visit, evaluation, closure and truth counts come from the case's own columns, the
    deadline counts from its slots (``acceptance_due_at`` … filled by the projection); without
    ``deadlines`` only the former (``PLAIN_COUNTS``).
    """
    stmt, keys = case_counts_statement(start, end, as_of, deadlines=deadlines)
    rows = session.execute(stmt)  # COUNT … FILTER is never NULL
    if not deadlines:
        return {prefix: dict(zip(keys, values, strict=True)) for prefix, *values in rows}
    return {prefix: _derive(dict(zip(keys, values, strict=True))) for prefix, *values in rows}


def case_counts_statement(start: datetime, end: datetime, as_of: datetime, *, deadlines: bool = True):
    """The GROUP BY of ``case_counts`` and the names of its count columns (after ``prefix``)."""
    cv = CaseView
    prefix = func.substr(cv.region_code, 1, 9).label("prefix")
    registered = _in(cv.registered_at, start, end)
    visit = and_(registered, cv.channel == "来访")
    evaluated = and_(_in(cv.evaluated_at, start, end), cv.evaluation_grade.is_not(None))
    closed = _in(cv.closed_at, start, end)
    judged = and_(closed, cv.statutory_type.in_(TRUTH_TYPES), cv.truth.is_not(None))
    columns = {
        "petitions": _sum(registered),
        "repeats": _sum(and_(registered, cv.repeat_of.is_not(None))),
        "visits": _sum(visit),
        "cross_level_visits": _sum(and_(visit, cv.cross_level.is_(True))),
        "evaluated": _sum(evaluated),
        "satisfied": _sum(and_(evaluated, cv.evaluation_grade.in_(SATISFIED))),
        "closed": _sum(closed),
        "resolved": _sum(and_(closed, cv.resolution == "resolved")),
        "truth_judged": _sum(judged),
        "substantiated": _sum(and_(judged, cv.truth.in_(SUBSTANTIATED))),
    }
    in_month = [registered, _in(cv.evaluated_at, start, end), closed]
    if deadlines:
        columns.update(_deadline_columns(cv, start, end, as_of))
        in_month += [_in(col, start, end) for col in (cv.acceptance_due_at, cv.handling_due_at, cv.assigned_due_at,
                                                      cv.evaluation_due_at)]
    stmt = (select(prefix, *(c.label(k) for k, c in columns.items()))
            .where(cv.legal_litigation.is_(False), or_(*in_month))
            .group_by(prefix))
    return stmt, list(columns)


def stage_counts(session: Session, start: datetime, end: datetime, as_of: datetime, *,
                 multi_row_only: bool = True) -> dict[str, dict[str, int]]:
    """prefix -> deadline counts from the stage rows due in [start, end), each case counted once per metric.

    Per case: *bad* when any of its stages was closed after its due or is still open with the due
    before ``as_of`` (an overdue open case counts against the unit); *good* when closed by the due.
    A case whose only stages are open and not yet due is left out (its deadline has not passed).
    Evaluation stages due in the month count the cases whose window expired (超期未评价).

    ``multi_row_only`` (the scorecard's use): only the cases with several rows of a kind
    (``deadline_rows``, copied onto their scored stage rows), whose slots are NULL — a handful, found by the
    stages' partial index on ``due_at``.  Without it,
    every case (the reference the slots are tested against, and the bench's "before").
    """
    s, cv = CaseStageView, CaseView
    metric = case((s.kind.in_(ACCEPTANCE_KINDS), "acceptance"), (s.kind.in_(HANDLING_KINDS), "handling"),
                  else_="evaluation").label("metric")
    good = and_(s.closed_at.is_not(None), s.closed_at <= s.due_at)
    late = s.closed_at > s.due_at
    overdue = and_(s.closed_at.is_(None), s.due_at < as_of)
    expired = and_(s.kind == "evaluation", cv.evaluation_expired.is_(True), cv.evaluation_grade.is_(None))

    def anywhere(condition):  # 1 when some stage row of the case (and metric) meets it
        return func.max(case((condition, 1), else_=0))

    prefix = func.substr(cv.region_code, 1, 9).label("prefix")
    per_case = (select(prefix, metric, anywhere(or_(good, late, overdue)).label("due"),
                       anywhere(or_(late, overdue)).label("bad"), anywhere(late).label("late"),
                       anywhere(expired).label("expired"))
                .select_from(s).join(cv, cv.case_id == s.case_id)
                .where(s.kind.in_((*ACCEPTANCE_KINDS, *HANDLING_KINDS, "evaluation")), _in(s.due_at, start, end),
                       cv.legal_litigation.is_(False))
                .group_by(prefix, metric, s.case_id))
    if multi_row_only:  # the stage rows carry the case's flag: their partial index on due_at starts the plan
        per_case = per_case.where(s.deadline_rows.is_(True))
    per_case = per_case.subquery()
    # Each case once per metric: the per-case maxima counted per prefix (hash aggregates, no DISTINCT sort).
    stmt = (select(per_case.c.prefix, per_case.c.metric,
                   *(func.count().filter(per_case.c[name] == 1).label(name) for name in ("due", "bad", "late", "expired")))
            .group_by(per_case.c.prefix, per_case.c.metric))
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for row in session.execute(stmt):
        counts = out[row.prefix]
        if row.metric == "acceptance":
            counts["acceptance_due"] = row.due
            counts["accepted_on_time"] = row.due - row.bad
        elif row.metric == "handling":
            counts["handling_due"] = row.due
            counts["closed_on_time"] = row.due - row.bad
            counts["closed_late"] = row.late
            counts["open_overdue"] = row.bad - row.late
        else:
            counts["evaluation_expired"] = row.expired
    return dict(out)


def _local_settings(session: Session) -> None:
    if session.bind.dialect.name == "postgresql":
        for name, value in PG_LOCAL_SETTINGS.items():
            session.execute(text(f"SET LOCAL {name} = '{value}'"))


def _finish(merged: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    for counts in merged.values():
        counts["evaluation_concluded"] = counts["evaluated"] + counts["evaluation_expired"]
    return merged


def month_counts(session: Session, start: datetime, end: datetime, as_of: datetime) -> dict[str, dict[str, int]]:
    """prefix -> every count of ``COUNTS`` (zeros filled in); 参评率's denominator derived.

    ONE GROUP BY over the month's per-case facts (``facts``: kept by the projection).  A span that is not
    a local month of the facts' time zone is counted from the case views (``month_counts_slots``).
    """
    from supervise_svc.scores import facts
    from supervise_svc.scores.domain import month_bounds

    facts.settle(session)  # the facts of what this transaction changed so far
    key = facts.month_key(start)
    if month_bounds(f"{key // 100:04d}-{key % 100:02d}", facts.TIMEZONE) != (start, end):
        return month_counts_slots(session, start, end, as_of)
    _local_settings(session)
    stmt, keys = facts.count_statement(key, as_of)
    merged = {prefix: {**dict.fromkeys(COUNTS, 0), **_derive(dict(zip(keys, values, strict=True)))}
              for prefix, *values in session.execute(stmt)}
    return _finish(merged)


def month_counts_slots(session: Session, start: datetime, end: datetime, as_of: datetime) -> dict[str, dict[str, int]]:
    """The same counts from the case views: one GROUP BY over ``case_views`` (slots), plus the stage rows
    of the few multi-row cases, added in (the former way; a reference of the tests)."""
    _local_settings(session)
    merged = {prefix: {**dict.fromkeys(COUNTS, 0), **counts}
              for prefix, counts in case_counts(session, start, end, as_of).items()}
    for prefix, counts in stage_counts(session, start, end, as_of).items():
        total = merged.setdefault(prefix, dict.fromkeys(COUNTS, 0))
        for name, value in counts.items():
            total[name] += value
    return _finish(merged)


def month_counts_joined(session: Session, start: datetime, end: datetime, as_of: datetime) -> dict[str, dict[str, int]]:
    """The same counts the former way, every deadline from the stage rows joined to their cases
    (no slots): the reference of the tests and the bench's "before"."""
    _local_settings(session)
    merged: dict[str, dict[str, int]] = {}
    for part in (case_counts(session, start, end, as_of, deadlines=False),
                 stage_counts(session, start, end, as_of, multi_row_only=False)):
        for prefix, counts in part.items():
            merged.setdefault(prefix, dict.fromkeys(COUNTS, 0)).update(counts)
    return _finish(merged)


def roll_up(counts_by_prefix: dict[str, dict[str, int]], length: int) -> dict[str, dict[str, int]]:
    """Counts summed by the first ``length`` characters of the prefix (6 = county, 9 = township)."""
    out: dict[str, dict[str, int]] = {}
    for key, counts in counts_by_prefix.items():
        if len(key) < length:
            continue  # a county-level location has no township
        total = out.setdefault(key[:length], dict.fromkeys(COUNTS, 0))
        for name, value in counts.items():
            total[name] += value
    return out
