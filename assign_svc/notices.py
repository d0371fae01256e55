"""Notices assign_svc requests from notify_svc (通知): 交办, 包案, 临期提醒, 回退, 延期待审批,
and the periodic sweep that raises the warning of every open stage whose warn_at has come.

dedupe_key = type:subject:recipient:cycle, so a re-sent request is a no-op at notify_svc.
"""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from assign_svc.models import Case, CaseStage, Person, Unit
from shared import clock
from shared.contracts import NoticeRequested
from shared.db import is_postgres
from shared.regions import subtree_prefix
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

#: Stages claimed per transaction by the warning sweep.
WARN_BATCH = 200
#: Upper bound of batches per sweep run (the next run continues).
WARN_MAX_BATCHES = 50

STAGE_LABELS = {
    "acceptance_notice": "受理告知", "objection": "异议退回", "handling": "办理", "assigned": "交办办理",
    "review_request": "申请复查", "review_decision": "复查办理", "recheck_request": "申请复核",
    "recheck_decision": "复核办理", "evaluation": "满意度评价", "register_route": "登记转交",
}


def _request(runtime: ServiceRuntime, session: Session, *, notice_type: str, case: Case, recipient_kind: str,
             recipient_id: str, recipient_name: str, cycle: str, context: dict, urgent: bool = False) -> None:
    runtime.emit(session, NoticeRequested(
        notice_type=notice_type, dedupe_key=f"{notice_type}:{case.id}:{recipient_kind}:{recipient_id}:{cycle}",
        recipient_kind=recipient_kind, recipient_id=recipient_id, recipient_name=recipient_name, subject_id=case.id,
        urgency="urgent" if urgent else "normal",
        context={"display_no": case.display_no, "region_code": case.region_code, **context}))


def assignment(session: Session, runtime: ServiceRuntime, case: Case, *, unit_name: str, leader, cycle: int | str,
               to_unit: bool = True) -> None:
    """交办通知 to the unit and 包案通知 to the owning leader."""
    context = {"unit_name": unit_name, "category": case.category, "request_text": case.request_text or "",
               "assigned_at": case.assigned_at.isoformat(), "due_at": case.due_at.isoformat(),
               "deadline_basis": case.deadline_basis}
    urgent = bool((case.flags or {}).get("urgent"))
    if to_unit:
        _request(runtime, session, notice_type="assignment", case=case, recipient_kind="unit",
                 recipient_id=case.unit_id, recipient_name=unit_name, cycle=str(cycle), context=context, urgent=urgent)
    if leader is not None:
        _request(runtime, session, notice_type="ownership", case=case, recipient_kind="person", recipient_id=leader.id,
                 recipient_name=leader.name, cycle=str(cycle), urgent=urgent,
                 context={**context, "leader_name": leader.name, "leader_basis": case.leader_basis or "指定包案"})


def objection_returned(session: Session, runtime: ServiceRuntime, case: Case, *, unit_name: str, reason: str,
                       cycle: int) -> None:
    """回退通知 to the petition department of the case's county (or the nearest one above)."""
    county = case.region_code[:6]
    dept = None
    for region in (county, county[:4] + "00", county[:2] + "0000"):
        dept = session.scalar(select(Unit).where(Unit.kind == "petition_dept", Unit.region_code == region))
        if dept is not None:
            break
    if dept is None:
        log.warning("case %s: no petition department to return it to", case.id)
        return
    _request(runtime, session, notice_type="objection_returned", case=case, recipient_kind="unit",
             recipient_id=dept.id, recipient_name=dept.name, cycle=str(cycle),
             context={"dept_name": dept.name, "unit_name": unit_name, "reason": reason,
                      "returned_at": clock.now().isoformat()})


def extension_pending(session: Session, runtime: ServiceRuntime, case: Case, *, unit_name: str, days: int,
                      reason: str, due_at) -> None:
    """延期待审批 to the head of the handling unit (the unit's inbox if it has none)."""
    head = session.scalar(select(Person).where(Person.unit_id == case.unit_id, Person.post == "head",
                                               Person.active.is_(True)))
    kind, rid, name = ("person", head.id, head.name) if head else ("unit", case.unit_id, unit_name)
    _request(runtime, session, notice_type="extension_pending", case=case, recipient_kind=kind, recipient_id=rid,
             recipient_name=name, cycle="1",
             context={"recipient_name": name, "unit_name": unit_name, "days": days, "reason": reason,
                      "due_at": due_at.isoformat()})


# ---------------------------------------------------------------- the warning sweep


def _claim(session: Session, now, limit: int) -> list[CaseStage]:
    stmt = (select(CaseStage)
            .where(CaseStage.closed_at.is_(None), CaseStage.warned_at.is_(None), CaseStage.warn_at.is_not(None),
                   CaseStage.warn_at <= now)
            .order_by(CaseStage.warn_at).limit(limit))
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


#: Stages whose decision belongs to the next-higher unit (复查 / 复核机关), which gets their warning.
HIGHER_STAGES = frozenset({"review_decision", "recheck_decision"})


def _wider(region: str, case_region: str) -> bool:
    """A region above the county (city or province) that contains the case's location — the same
    test ``handling.core._is_higher`` applies to whoever decides a 复查 / 复核."""
    prefix = subtree_prefix(region)
    return len(prefix) < 6 and case_region.startswith(prefix)


def higher_unit(session: Session, case: Case) -> Unit | None:
    """The next-higher unit that decides a 复查 / 复核: the petition department one level up from the
    case's county (the city's, else the province's), else the nearest ancestor of the handling unit
    above county level."""
    county = case.region_code[:6]
    for region in (county[:4] + "00", county[:2] + "0000"):
        if region == county:
            continue
        dept = session.scalar(select(Unit).where(Unit.kind == "petition_dept", Unit.region_code == region,
                                                 Unit.active.is_(True)))
        if dept is not None:
            return dept
    unit, seen = session.get(Unit, case.unit_id), set()
    while unit is not None and unit.parent_id and unit.parent_id not in seen:
        seen.add(unit.id)
        unit = session.get(Unit, unit.parent_id)
        if unit is not None and _wider(unit.region_code, case.region_code):
            return unit
    return None


def warn_stage(session: Session, runtime: ServiceRuntime, stage: CaseStage, now) -> None:
    """临期提醒 to the unit that must act: the handling unit, or for a 复查 / 复核 decision the
    next-higher unit (``higher_unit``; the handling unit only if the directory has none)."""
    case = session.get(Case, stage.case_id)
    unit = session.get(Unit, stage.unit_id)
    unit_name = unit.name if unit else stage.unit_id
    recipient = higher_unit(session, case) if stage.kind in HIGHER_STAGES else None
    if stage.kind in HIGHER_STAGES and recipient is None:
        log.warning("case %s: no next-higher unit for the %s warning; sent to the handling unit", case.id, stage.kind)
    recipient_id, recipient_name = (recipient.id, recipient.name) if recipient else (stage.unit_id, unit_name)
    _request(runtime, session, notice_type="deadline_warning", case=case, recipient_kind="unit",
             recipient_id=recipient_id, recipient_name=recipient_name,
             cycle=f"{stage.kind}:{int(stage.warn_at.timestamp())}", urgent=True,
             context={"unit_name": recipient_name, "handling_unit_name": unit_name,
                      "stage_label": STAGE_LABELS.get(stage.kind, stage.kind),
                      "due_at": stage.due_at.isoformat(), "basis": stage.basis})
    stage.warned_at = now


def warning_sweep(runtime: ServiceRuntime) -> dict[str, int]:
    """Raise 临期提醒 for every open stage whose warning time has come; one bad row is logged and skipped."""
    warned = failed = 0
    for _ in range(WARN_MAX_BATCHES):
        now = clock.now()
        with runtime.uow() as session:
            claimed = _claim(session, now, WARN_BATCH)
            skipped = 0
            for stage in claimed:
                try:
                    with session.begin_nested():
                        warn_stage(session, runtime, stage, now)
                    warned += 1
                except Exception:
                    log.exception("deadline warning for stage %s failed; skipped", stage.id)
                    failed += 1
                    skipped += 1
        if len(claimed) < WARN_BATCH or skipped == len(claimed):
            break
    return {"warned": warned, "failed": failed}
