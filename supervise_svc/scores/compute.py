"""Compute (or recompute) one month's scorecard and run the lagging check (工作被动落后, rule 5).

Use-case functions: explicit session, never commit.  Same read model + same settings → the same
rows (the ``as_of`` instant of a finished month is its end, whatever the time of computation).
"""
from __future__ import annotations

import json
import logging
import operator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, and_, delete, insert, or_, select
from sqlalchemy.orm import Session

from supervise_svc.models import DirectoryUnit
from supervise_svc.scores import domain
from supervise_svc.scores.aggregate import month_counts, roll_up
from supervise_svc.scores.domain import ScoreSettings
from supervise_svc.scoring_models import ScorecardRow, ScorecardRun, UnitStreak

log = logging.getLogger(__name__)


class MonthNotStarted(ValueError):
    """The month has not begun yet: nothing to rank."""


@dataclass(frozen=True)
class Subject:
    """A ranked unit: a township (key = 9-digit prefix) or a county (key = 6-digit code)."""

    unit: Any  # the unit's row: id, name, kind, level, region_code, peer_group, population
    level: str
    key: str
    group: str


def subjects(session: Session) -> list[Subject]:
    """The ranked units: active townships (peer group: their county) and county governments (their city)."""
    u = DirectoryUnit
    stmt = select(u.id, u.name, u.kind, u.level, u.region_code, u.peer_group, u.population).where(u.active.is_(True), or_(
        and_(DirectoryUnit.kind == "township", DirectoryUnit.level == "township"),
        and_(DirectoryUnit.kind == "government", DirectoryUnit.level == "county")))
    out = []
    for unit in session.execute(stmt.order_by(DirectoryUnit.id)):  # plain rows: no ORM identity map
        code = unit.region_code
        if unit.level == "township" and len(code) == 12:
            out.append(Subject(unit, "township", code[:9], code[:6]))
        elif unit.level == "county":
            out.append(Subject(unit, "county", code[:6], code[:4] + "00"))
    return out


def compute_month(session: Session, *, month: str, settings: ScoreSettings, tz: str, now: datetime,
                  computed_by: str = "") -> ScorecardRun:
    """Compute ``month`` (YYYY-MM, local) and replace its stored rows; returns the run.

    Streaks continue from the stored previous month (a month never computed counts as a fresh start);
    recomputing a month does not recompute the months after it.
    """
    start, end = domain.month_bounds(month, tz)
    if start > now:
        raise MonthNotStarted(f"{month} has not started")
    as_of = min(end, now)
    counts = month_counts(session, start, end, as_of)
    by_key = {**roll_up(counts, 9), **roll_up(counts, 6)}
    previous = dict(session.execute(select(ScorecardRow.unit_id, ScorecardRow.streak)
                                    .where(ScorecardRow.month == domain.shift_month(month, -1))).all())
    subs = subjects(session)
    names = {s.key: s.unit.name for s in subs if s.level == "county"}
    rows: list[dict] = []
    for s in subs:
        unit_counts = by_key.get(s.key) or dict.fromkeys(domain.COUNTS, 0)
        rates = domain.rates_of(unit_counts, s.unit.population)
        rows.append(dict(month=month, unit_id=s.unit.id, unit_name=s.unit.name, level=s.level,
                         region_code=s.unit.region_code, peer_group=s.group,
                         peer_group_name=(names.get(s.group, s.unit.peer_group or "") if s.level == "township"
                                          else (s.unit.peer_group or "")),
                         population=s.unit.population, counts=unit_counts, rates=rates,
                         score=domain.composite(rates, settings),
                         failed_thresholds=domain.failed_thresholds(rates, settings.thresholds)))
    _rank_and_colour(rows, previous, settings)
    run = session.get(ScorecardRun, month)
    if run is None:
        run = ScorecardRun(month=month, computations=0)
        session.add(run)
    else:
        session.execute(delete(ScorecardRow).where(ScorecardRow.month == month))
    run.period_start, run.period_end, run.as_of = start, end, as_of
    run.computed_at, run.computed_by = now, computed_by
    run.settings_version, run.settings = settings.label, settings.raw
    run.computations = (run.computations or 0) + 1
    session.flush()
    _insert_many(session, ScorecardRow.__table__, rows)
    _remember_streaks(session, month, rows)
    log.info("scorecard %s computed: %d units (settings %s)", month, len(rows), settings.label)
    return run


def _rank_and_colour(rows: list[dict], previous: dict[str, int], settings: ScoreSettings) -> None:
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["level"], row["peer_group"]), []).append(row)
    for (level, _group), members in groups.items():
        scores = {r["unit_id"]: r["score"] for r in members}
        ranks = domain.rank(scores)
        near, blue = domain.bottom_zones(scores, ranks, settings.township if level == "township" else settings.county)
        ranked = sum(1 for v in ranks.values() if v is not None)
        for row in members:
            uid = row["unit_id"]
            st = domain.standing(near=uid in near, blue=uid in blue, previous_streak=previous.get(uid, 0),
                                 settings=settings)
            row.update(rank=ranks[uid], peer_size=ranked, near_bottom=st.near_bottom, streak=st.streak,
                       colour=st.colour)


#: ``json.dumps(value, ensure_ascii=False)`` without building an encoder per call.
_encode_json = json.JSONEncoder(ensure_ascii=False).encode
#: Units per DELETE … IN (keeps the bound parameters under the backends' limits).
CHUNK = 500


def _insert_many(session: Session, table, rows: list[dict]) -> None:
    """Bulk INSERT of thousands of rows inside the session's transaction.

    PostgreSQL: COPY on the session's own connection (an executemany would send one statement per
    row, a multi-row VALUES binds tens of thousands of parameters); SQLite: the driver's executemany.
    """
    if not rows:
        return
    if session.bind.dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    columns = list(rows[0])
    json_at = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    take = operator.itemgetter(*columns)
    driver = session.connection().connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            values = list(take(row))
            for i in json_at:
                values[i] = _encode_json(values[i])
            copy.write_row(values)


def _remember_streaks(session: Session, month: str, rows: list[dict]) -> None:
    """Keep each unit's newest standing (a recomputed older month does not overwrite a newer one)."""
    held = dict(session.execute(select(UnitStreak.unit_id, UnitStreak.month)).all())
    replace = [r for r in rows if held.get(r["unit_id"], "") <= month]
    table = UnitStreak.__table__
    ids = [r["unit_id"] for r in replace if r["unit_id"] in held]
    for i in range(0, len(ids), CHUNK):
        session.execute(delete(table).where(table.c.unit_id.in_(ids[i:i + CHUNK])))
    _insert_many(session, table, [{"unit_id": r["unit_id"], "month": month, "streak": r["streak"],
                                   "colour": r["colour"]} for r in replace])


def lagging_check(session: Session, runtime, *, month: str, settings: ScoreSettings, detected_at: datetime) -> int:
    """Open a 工作被动落后 finding for every lagging unit of a computed month; returns how many opened.

    Lagging = coloured (blue/yellow/red) or below a threshold rate.  The finding's dedupe key
    (lagging:unit:{unit}:{month}) makes this exactly once per unit per month, recompute or not.
    """
    from supervise_svc.findings import open_finding

    opened = 0
    stmt = (select(ScorecardRow).where(ScorecardRow.month == month)
            .order_by(ScorecardRow.level, ScorecardRow.peer_group, ScorecardRow.rank, ScorecardRow.unit_id))
    for row in session.scalars(stmt):
        rung = domain.lagging_rung(row.colour, row.failed_thresholds, settings)
        if rung is None:
            continue
        evidence = {"month": month, "colour": row.colour, "colour_label": domain.COLOUR_LABELS[row.colour],
                    "rank": row.rank, "peer_size": row.peer_size, "peer_group": row.peer_group,
                    "score": row.score, "streak": row.streak, "rates": row.rates,
                    "thresholds_failed": {m: settings.thresholds[m] for m in row.failed_thresholds},
                    "settings_version": settings.label, "initial_rung": rung}
        reason = _reason(row, month)
        finding = open_finding(session, runtime, rule="lagging", subject_kind="unit", subject_id=row.unit_id,
                               cycle=month, unit_id=row.unit_id, region_code=row.region_code, evidence=evidence,
                               detected_at=detected_at, initial_rung=rung, reason=reason)
        opened += finding is not None
    return opened


def _reason(row: ScorecardRow, month: str) -> str:
    parts = []
    if row.colour:
        parts.append(f"{month} 排名第{row.rank}/{row.peer_size}，{domain.COLOUR_LABELS[row.colour]}")
    for metric in row.failed_thresholds:
        parts.append(f"{domain.LABELS[metric]} {row.rates[metric]:.1%} 低于要求")
    return "工作被动落后：" + "；".join(parts)
