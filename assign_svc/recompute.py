"""Recompute ``due_at``/``warn_at`` of open stages (after a calendar change, or a policy change
on request).  Stages keep the policy version they started with unless ``repick`` is asked.

Open stages are read in keyset-paginated chunks; deadlines are memoised by their inputs
(start day, length, unit, extension, pause, warning) — most stages share them — and written
back with one executemany per chunk (bulk UPDATE by primary key).
"""
from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from assign_svc import stages
from assign_svc.domain.deadlines import StageClock, compute, select_policy
from assign_svc.models import Case, CaseStage
from assign_svc.rules import snapshot
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

#: Open stages read and written per chunk.
CHUNK = 20_000

_COLUMNS = (CaseStage.id, CaseStage.case_id, CaseStage.kind, CaseStage.started_at, CaseStage.start_day,
            CaseStage.length, CaseStage.length_unit, CaseStage.roll_forward, CaseStage.extension_days,
            CaseStage.paused_days, CaseStage.warn_before_days, CaseStage.warn_fraction, CaseStage.basis,
            CaseStage.due_at, CaseStage.warn_at)


def recompute_open_stages(session: Session, runtime: ServiceRuntime, *, repick: bool = False,
                          chunk: int = CHUNK) -> dict[str, int]:
    """Recompute every open, running stage; returns how many were looked at and changed."""
    if repick:
        return _repick(session, runtime)
    calendar, tz = stages.calendar_for(runtime), runtime.settings.timezone
    memo: dict[tuple, tuple] = {}
    seen = changed = 0
    last_id = ""
    while True:
        rows = session.execute(select(*_COLUMNS).where(CaseStage.closed_at.is_(None), CaseStage.paused_at.is_(None),
                                                       CaseStage.id > last_id)
                               .order_by(CaseStage.id).limit(chunk)).all()
        if not rows:
            break
        last_id = rows[-1].id
        stage_updates, case_updates = [], {}
        for r in rows:
            seen += 1
            plain = stages._plain_basis(r.basis)
            key = (r.start_day, r.length, r.length_unit, r.roll_forward, r.extension_days, r.paused_days, plain)
            result = memo.get(key)
            if result is None:
                # The start day decides the deadline; the start instant only matters for the warning.
                noon = datetime.combine(r.start_day, time(12), tzinfo=ZoneInfo(tz))
                deadline = compute(calendar, StageClock(
                    started_at=noon, length=r.length, unit=r.length_unit, roll_forward=r.roll_forward, basis=plain,
                    extension_days=r.extension_days, paused_days=r.paused_days), tz=tz)
                result = (deadline.due_at, deadline.basis, deadline.provisional)
                memo[key] = result
            due, basis, provisional = result
            warn = _warn(due, r.started_at, r.warn_before_days, r.warn_fraction)
            if due != r.due_at or warn != r.warn_at or basis != r.basis:
                changed += 1
                stage_updates.append({"id": r.id, "due_at": due, "warn_at": warn, "basis": basis,
                                      "provisional": provisional})
                if r.kind in ("handling", "assigned"):
                    case_updates.setdefault(r.case_id, []).append((r.kind, due, basis))
        if stage_updates:
            session.execute(update(CaseStage), stage_updates)
        if case_updates:
            _update_cases(session, case_updates)
        session.flush()
    log.info("recomputed %d open stages, %d changed", seen, changed)
    return {"open_stages": seen, "changed": changed}


def _warn(due: datetime, started: datetime, before_days: int | None, fraction: float | None) -> datetime | None:
    """As ``WorkCalendar.warn_at``: days or a fraction of the span before due, never before the start."""
    if before_days is not None:
        return max(due - timedelta(days=before_days), started)
    if fraction is not None:
        return max(due - (due - started) * fraction, started)
    return None


def _update_cases(session: Session, updates: dict[str, list[tuple]]) -> None:
    """The case's headline deadline follows its assigned stage (交办), else its handling stage."""
    rows = []
    for case_id, items in updates.items():
        items.sort(key=lambda i: 0 if i[0] == "assigned" else 1)
        _, due, basis = items[0]
        rows.append({"id": case_id, "due_at": due, "deadline_basis": basis[:128]})
    # Plain Core UPDATE (not the ORM's versioned one): a recomputation is not a user's edit.
    from sqlalchemy import bindparam
    table = Case.__table__
    session.connection().execute(
        table.update().where(table.c.id == bindparam("b_id")).values(due_at=bindparam("b_due"),
                                                                       deadline_basis=bindparam("b_basis")),
        [{"b_id": r["id"], "b_due": r["due_at"], "b_basis": r["deadline_basis"]} for r in rows])


def _repick(session: Session, runtime: ServiceRuntime) -> dict[str, int]:
    """Apply the policies now in force to open stages (a policy change, on request)."""
    snap = snapshot(session, runtime.extras.setdefault("assign_cache", {}))
    seen = changed = 0
    for stage in session.scalars(select(CaseStage).where(CaseStage.closed_at.is_(None))):
        seen += 1
        case = session.get(Case, stage.case_id)
        unit = snap.units_by_id.get(stage.unit_id)
        try:
            policy = select_policy(snap.policies, stage.kind, stages.facts_of(case), level=unit.level if unit else None)
        except LookupError:
            continue
        if policy.id == stage.policy_id:
            continue
        stages._apply_policy(stage, policy)
        stages.refresh(runtime, stage)
        changed += 1
    session.flush()
    return {"open_stages": seen, "changed": changed, "repicked": changed}


__all__ = ["recompute_open_stages"]
