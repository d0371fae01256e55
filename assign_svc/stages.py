"""Deadline stages of a case (期限节点): open, close, pause, resume, extend, recompute.

Each open stage stores ``due_at`` and ``warn_at``, recomputed on every change.  The policy
version in force when the stage started is copied into it; ``recompute_open_stages``
re-applies the calendar (and, on request, the policies now in force) to open stages.
"""
from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from assign_svc.domain.deadlines import Policy, StageClock, compute, paused_length, select_policy
from assign_svc.domain.routing import PetitionFacts
from assign_svc.models import Case, CaseStage
from assign_svc.rules import Snapshot
from shared.calendar import WorkCalendar, local_date
from shared.runtime import ServiceRuntime


@lru_cache(maxsize=4)
def _calendar(path: str, unknown_year: str) -> WorkCalendar:
    if path:
        return WorkCalendar.from_file(path, unknown_year=unknown_year)
    return WorkCalendar(unknown_year=unknown_year)


def calendar_for(runtime: ServiceRuntime) -> WorkCalendar:
    override = runtime.extras.get("calendar")
    if override is not None:
        return override
    return _calendar(runtime.settings.calendar_file, runtime.settings.calendar_unknown_year)


def facts_of(case: Case) -> PetitionFacts:
    flags = case.flags or {}
    return PetitionFacts(region_code=case.region_code, category=case.category, statutory_type=case.statutory_type,
                         purpose=case.purpose, channel=case.channel, legal_litigation=not case.in_clock,
                         group_visit=bool(flags.get("group_visit")), cross_level=bool(flags.get("cross_level")),
                         repeat=bool(flags.get("repeat_of")), urgent=bool(flags.get("urgent")),
                         text=case.request_text or "")


def clock_of(stage: CaseStage) -> StageClock:
    return StageClock(started_at=stage.started_at, length=stage.length, unit=stage.length_unit,
                      roll_forward=stage.roll_forward, basis=_plain_basis(stage.basis), extension_days=stage.extension_days,
                      paused_days=stage.paused_days, warn_before_days=stage.warn_before_days,
                      warn_fraction=stage.warn_fraction)


_PROVISIONAL = re.compile(r"（[\d、]+年法定节假日安排尚未录入，暂按周末推算，请核对）$")


def _plain_basis(basis: str) -> str:
    """The basis without the provisional note (it is re-added if still due)."""
    return _PROVISIONAL.sub("", basis)


def refresh(runtime: ServiceRuntime, stage: CaseStage) -> CaseStage:
    """Recompute the stage's due and warning instants (NULL while paused)."""
    if stage.paused_at is not None:
        stage.due_at, stage.warn_at = None, None
        return stage
    deadline = compute(calendar_for(runtime), clock_of(stage), tz=runtime.settings.timezone)
    if stage.warned_at is not None and deadline.warn_at is not None and deadline.warn_at > stage.warned_at:
        stage.warned_at = None  # the warning moved later (extension, resume): warn again in the new cycle
    stage.due_at, stage.warn_at, stage.basis, stage.provisional = (deadline.due_at, deadline.warn_at, deadline.basis,
                                                                   deadline.provisional)
    return stage


def _apply_policy(stage: CaseStage, policy: Policy) -> None:
    stage.policy_id, stage.policy_code, stage.policy_version = policy.id, policy.code, policy.version
    stage.length, stage.length_unit, stage.roll_forward = policy.length, policy.unit, policy.roll_forward
    stage.warn_before_days, stage.warn_fraction, stage.basis = policy.warn_before_days, policy.warn_fraction, policy.basis


def open_stage(session: Session, runtime: ServiceRuntime, snap: Snapshot, case: Case, step: str, *,
               started_at: datetime, length_days: int | None = None, basis: str | None = None,
               add: bool = True) -> CaseStage:
    """Start a stage under the policy in force for ``step`` (or a length set by the assigning body).
    With ``add=False`` the stage is only computed (a projection), not stored."""
    unit = snap.units_by_id.get(case.unit_id)
    policy = select_policy(snap.policies, step, facts_of(case), level=unit.level if unit else None)
    stage = CaseStage(case_id=case.id, kind=step, unit_id=case.unit_id, started_at=started_at,
                      start_day=local_date(started_at, runtime.settings.timezone), extension_days=0, paused_days=0)
    _apply_policy(stage, policy)
    if length_days is not None:  # 交办 with a deadline set by the assigning body
        stage.length, stage.length_unit = length_days, "calendar_days"
        stage.basis = basis or f"交办机关确定的办理期限（{length_days}日）"
    refresh(runtime, stage)
    if add:
        session.add(stage)
    return stage


def open_stages(session: Session, case_id: str, kinds: Iterable[str] | None = None) -> list[CaseStage]:
    stmt = select(CaseStage).where(CaseStage.case_id == case_id, CaseStage.closed_at.is_(None))
    if kinds is not None:
        stmt = stmt.where(CaseStage.kind.in_(list(kinds)))
    return list(session.scalars(stmt.order_by(CaseStage.started_at)))


def close_stages(session: Session, case_id: str, kinds: Iterable[str] | None, *, at: datetime,
                 outcome: str) -> list[CaseStage]:
    """Close open stages; the outcome records whether it was met in time (``…:late`` if not)."""
    closed = open_stages(session, case_id, kinds)
    for stage in closed:
        stage.closed_at = at
        late = stage.due_at is not None and at > stage.due_at
        stage.outcome = f"{outcome}:late" if late else outcome
    return closed


def pause(runtime: ServiceRuntime, stages: Iterable[CaseStage], *, at: datetime) -> None:
    for stage in stages:
        stage.paused_at = at
        refresh(runtime, stage)


def resume(runtime: ServiceRuntime, stages: Iterable[CaseStage], *, at: datetime) -> None:
    calendar = calendar_for(runtime)
    for stage in stages:
        if stage.paused_at is None:
            continue
        stage.paused_days += paused_length(calendar, stage.length_unit, stage.paused_at, at,
                                           tz=runtime.settings.timezone)
        stage.paused_at = None
        refresh(runtime, stage)


def extend(runtime: ServiceRuntime, stage: CaseStage, days: int) -> None:
    stage.extension_days = days
    refresh(runtime, stage)


def describe(stages: Iterable[CaseStage]) -> list[dict]:
    return [{"kind": s.kind, "due_at": s.due_at.isoformat() if s.due_at else None,
             "warn_at": s.warn_at.isoformat() if s.warn_at else None, "basis": s.basis, "paused": s.paused_at is not None,
             "policy": f"{s.policy_code}@{s.policy_version}"} for s in stages]
