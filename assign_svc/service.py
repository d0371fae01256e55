"""assign_svc use cases: routing a registered petition into a case (交办).  Never commits."""
from __future__ import annotations

import logging
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.orm import Session

from assign_svc.directory import unit_infos
from assign_svc.domain.routing import route
from assign_svc.models import Case
from shared.calendar import DeadlineRule, WorkCalendar
from shared.contracts import CaseAssigned, NoticeRequested, PetitionRegistered
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

#: Statutory handling period (办理期限): 60 days, Civil Code counting, rolls past rest days.
HANDLING_RULE = DeadlineRule(length=60, unit="calendar_days", roll_forward=True,
                             basis="《信访工作条例》第三十四条：60日内办结")

AWAITING_SIGNATURE = "待签收"


#: Shown with a deadline that fell in a year without an official holiday schedule.
PROVISIONAL_NOTE = "（{year}年法定节假日安排尚未录入，暂按周末推算，请核对）"


@lru_cache(maxsize=4)
def _calendar(path: str, unknown_year: str) -> WorkCalendar:
    if path:
        return WorkCalendar.from_file(path, unknown_year=unknown_year)
    return WorkCalendar(unknown_year=unknown_year)


def calendar_for(runtime: ServiceRuntime) -> WorkCalendar:
    return _calendar(runtime.settings.calendar_file, runtime.settings.calendar_unknown_year)


def deadline_basis(calendar: WorkCalendar, rule: DeadlineRule, due_at) -> str:
    """The legal basis, flagged as provisional when the deadline's year is not in the calendar."""
    year = due_at.year
    return rule.basis if year in calendar.known_years() else rule.basis + PROVISIONAL_NOTE.format(year=year)


def assign_petition(session: Session, runtime: ServiceRuntime, petition: PetitionRegistered) -> Case:
    """Route a registered petition to its responsible unit, set its deadline, announce it."""
    existing = session.scalar(select(Case).where(Case.petition_id == petition.petition_id))
    if existing is not None:
        return existing
    unit = route(unit_infos(session), region_code=petition.region_code, category=petition.category)
    assigned_at = petition.registered_at
    calendar = calendar_for(runtime)
    due_at = calendar.due(HANDLING_RULE, assigned_at, tz=runtime.settings.timezone)
    case = Case(petition_id=petition.petition_id, display_no=petition.display_no, unit_id=unit.id,
                region_code=petition.region_code, category=petition.category, status=AWAITING_SIGNATURE,
                assigned_at=assigned_at, due_at=due_at,
                deadline_basis=deadline_basis(calendar, HANDLING_RULE, due_at))
    session.add(case)
    session.flush()
    runtime.emit(session, CaseAssigned(
        case_id=case.id, petition_id=case.petition_id, display_no=case.display_no, unit_id=unit.id,
        unit_name=unit.name, region_code=case.region_code, category=case.category,
        assigned_at=case.assigned_at, due_at=case.due_at, deadline_basis=case.deadline_basis))
    runtime.emit(session, NoticeRequested(
        notice_type="assignment", dedupe_key=f"assignment:{case.id}:unit:{unit.id}:1",
        recipient_kind="unit", recipient_id=unit.id, recipient_name=unit.name, subject_id=case.id,
        context={"display_no": case.display_no, "unit_name": unit.name, "category": case.category,
                 "region_code": case.region_code, "request_text": petition.request_text,
                 "assigned_at": case.assigned_at.isoformat(), "due_at": case.due_at.isoformat(),
                 "deadline_basis": case.deadline_basis}))
    log.info("petition %s assigned to %s as case %s, due %s", petition.display_no, unit.id, case.id, due_at)
    return case
