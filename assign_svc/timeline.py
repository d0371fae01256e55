"""The case timeline (办理过程): every action is a row with who, when and why, and an event.

``record`` writes the ``CaseEvent`` row, emits ``case.action_recorded`` (to supervise) and,
when the status moved, ``case.status_changed`` (to intake) — on every transition.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from assign_svc import stages
from assign_svc.domain.workflow import CLOSED, FINAL, RECHECKED, TERMINATED
from assign_svc.models import Case, CaseEvent
from shared.contracts import CaseActionRecorded, CaseStatusChanged
from shared.runtime import ServiceRuntime

#: States in which the case counts as 办结 (a reply issued) for intake.
RESOLVED = frozenset({CLOSED, "已存档", RECHECKED})


def record(session: Session, runtime: ServiceRuntime, case: Case, *, action: str, label: str, previous: str,
           actor_id: str, actor_name: str, actor_role: str, at: datetime, reason: str = "",
           data: dict | None = None, seq: int | None = None, open_now: list | None = None) -> CaseEvent:
    """``seq`` and ``open_now`` may be given by a caller that knows them (a new case), saving queries."""
    if seq is None:
        seq = (session.scalar(select(func.max(CaseEvent.seq)).where(CaseEvent.case_id == case.id)) or 0) + 1
    event = CaseEvent(case_id=case.id, seq=seq, action=action, label=label, from_status=previous or None,
                      to_status=case.status, actor_id=actor_id, actor_name=actor_name, actor_role=actor_role,
                      at=at, reason=reason or "", data=_jsonable(data or {}))
    session.add(event)
    if open_now is None:
        session.flush()
        open_now = stages.open_stages(session, case.id)
    described = stages.describe(open_now)
    runtime.emit(session, CaseActionRecorded(
        case_id=case.id, petition_id=case.petition_id, display_no=case.display_no, unit_id=case.unit_id,
        region_code=case.region_code, action=action, label=label, status=case.status, previous_status=previous or "",
        at=at, actor=actor_name, actor_role=actor_role, reason=reason or "", leader_id=case.leader_id,
        data=_jsonable(data or {}), stages=described, seq=seq))
    if previous != case.status:
        runtime.emit(session, CaseStatusChanged(
            case_id=case.id, petition_id=case.petition_id, display_no=case.display_no, unit_id=case.unit_id,
            region_code=case.region_code, status=case.status, previous_status=previous or "", changed_at=at,
            actor=actor_name, reason=reason or label, resolved=case.status in RESOLVED,
            final=case.status in FINAL or case.status == TERMINATED, seq=seq))
    return event


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def events(session: Session, case_id: str) -> list[CaseEvent]:
    return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)))
