"""约谈 (interviews): created when a finding reaches the rung 约谈 (or by a supervisor), scheduled
with notices to the people called in, held with a record, and followed by rectification items
(整改事项) whose overdue ones climb the finding's ladder.

Who is called in (被约谈人), from the directory copy by post (assign_svc/data/directory.yaml):
- the responsible unit's Party secretary (post ``party_secretary``; its ``head`` if it has none) —
  for a township (kind ``township``) the 乡镇党委书记;
- the office director (post ``office_director``) of the petition department (kind ``petition_dept``)
  of the unit's county — 县信访局办公室主任;
- the county leader in charge (分管信访工作的县领导) = the ``deputy`` of the county government
  (kind ``government`` of the county) — domain.md §7 (yellow: township secretary, county office
  director, county leader in charge).
Status: draft → scheduled → held → closed.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import clock
from shared.db import is_postgres, new_id
from shared.runtime import ServiceRuntime
from supervise_svc import findings as findings_mod
from supervise_svc import ladder
from supervise_svc.models import (DirectoryPerson, DirectoryUnit, Finding, Interview, Interviewee,
                                  RectificationItem)

log = logging.getLogger(__name__)

#: status -> actions allowed in it
INTERVIEW_ACTIONS = {"draft": ("edit", "schedule"), "scheduled": ("edit", "schedule", "record", "add_item"),
                     "held": ("record", "add_item", "close"), "closed": ()}
ITEM_BATCH = 200


class InterviewConflict(Exception):
    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


def _check(interview: Interview, action: str) -> None:
    allowed = list(INTERVIEW_ACTIONS.get(interview.status, ()))
    if action not in allowed:
        raise InterviewConflict(f"约谈状态为 {interview.status}，不能{action}", allowed)


def _person(session: Session, unit_id: str, *posts: str) -> DirectoryPerson | None:
    for post in posts:
        person = session.scalar(select(DirectoryPerson).where(DirectoryPerson.unit_id == unit_id,
                                                              DirectoryPerson.post == post,
                                                              DirectoryPerson.active.is_(True)).limit(1))
        if person is not None:
            return person
    return None


def resolve_interviewees(session: Session, unit_id: str, region_code: str) -> list[DirectoryPerson]:
    """The people to call in for a unit (see the module docstring), without duplicates."""
    out: list[DirectoryPerson] = []
    unit = session.get(DirectoryUnit, unit_id)
    county = (unit.region_code if unit else region_code)[:6]
    secretary = _person(session, unit_id, "party_secretary", "head")
    if secretary:
        out.append(secretary)
    dept = session.scalar(select(DirectoryUnit).where(DirectoryUnit.kind == "petition_dept",
                                                      DirectoryUnit.region_code == county).limit(1))
    if dept is not None and (p := _person(session, dept.id, "office_director")):
        out.append(p)
    gov = session.scalar(select(DirectoryUnit).where(DirectoryUnit.kind == "government",
                                                     DirectoryUnit.region_code == county).limit(1))
    if gov is not None and (p := _person(session, gov.id, "deputy")):
        out.append(p)
    seen, unique = set(), []
    for p in out:
        if p.id not in seen:
            seen.add(p.id)
            unique.append(p)
    return unique


def create(session: Session, runtime: ServiceRuntime, *, finding: Finding, at: datetime, by: str,
           trigger: dict | None = None) -> Interview:
    """A draft interview about ``finding`` with the people to call in resolved from the directory."""
    dept = ladder.unit_of_kind(session, "petition_dept", finding.region_code)
    chair = _person(session, dept.id, "head") if dept else None
    interview = Interview(id=new_id(), interview_no=findings_mod.next_number(session, "YT", finding.region_code, at,
                                                                          runtime.settings.timezone),
                          finding_id=finding.id, unit_id=finding.unit_id, unit_name=finding.unit_name,
                          region_code=finding.region_code, status="draft",
                          trigger=trigger or {"findings": [finding.finding_no], "cases": [finding.display_no]
                                              if finding.display_no else [],
                                              "colour": (finding.evidence or {}).get("colour_label")
                                              or (finding.evidence or {}).get("colour") or ""},
                          convening_body=dept.name if dept else "", chair=chair.name if chair else "",
                          created_at=at, created_by=by, attendees=[])
    session.add(interview)
    for p in resolve_interviewees(session, finding.unit_id, finding.region_code):
        unit = session.get(DirectoryUnit, p.unit_id)
        session.add(Interviewee(interview_id=interview.id, person_id=p.id, name=p.name, post=p.post, title=p.title,
                                unit_id=p.unit_id, unit_name=unit.name if unit else ""))
    findings_mod.record(session, finding, action="interview_created", actor=by, at=at,
                        reason=f"约谈 {interview.interview_no} 已立（待安排）", from_status=finding.status,
                        data={"interview_id": interview.id})
    session.flush()
    return interview


def ensure_for_finding(session: Session, runtime: ServiceRuntime, finding: Finding, *, at: datetime) -> Interview:
    """The open interview of ``finding``, created as a draft if there is none (the rung 约谈 was reached)."""
    existing = session.scalar(select(Interview).where(Interview.finding_id == finding.id,
                                                      Interview.status != "closed").limit(1))
    return existing or create(session, runtime, finding=finding, at=at, by="rule:ladder")


def get(session: Session, interview_id: str) -> Interview:
    interview = session.get(Interview, interview_id)
    if interview is None:
        raise findings_mod.NotFound(f"约谈 {interview_id} 不存在")
    return interview


def people(session: Session, interview_id: str) -> list[Interviewee]:
    return list(session.scalars(select(Interviewee).where(Interviewee.interview_id == interview_id)
                                .order_by(Interviewee.id)))


def items(session: Session, interview_id: str) -> list[RectificationItem]:
    return list(session.scalars(select(RectificationItem).where(RectificationItem.interview_id == interview_id)
                                .order_by(RectificationItem.id)))


EDITABLE = ("scheduled_at", "place", "convening_body", "chair", "recorder", "attendees")


def edit(session: Session, interview: Interview, data: dict) -> Interview:
    """Change time, place, convening body, chair, recorder, attendees and/or the people called in."""
    _check(interview, "edit")
    for key in EDITABLE:
        if key in data:
            setattr(interview, key, data[key])
    if "interviewees" in data:
        bad = [i for i, p in enumerate(data["interviewees"]) if not p.get("person_id") and not p.get("name")]
        if bad:
            raise findings_mod.BadInput("被约谈人需要目录人员或姓名", {f"interviewees.{i}": ["person_id 或 name 必填"]
                                                                     for i in bad})
        for row in people(session, interview.id):
            session.delete(row)
        for p in data["interviewees"]:
            person = session.get(DirectoryPerson, p["person_id"]) if p.get("person_id") else None
            if p.get("person_id") and person is None:
                raise findings_mod.BadInput("被约谈人不在目录中", {"interviewees": [f"未知人员 {p['person_id']}"]})
            unit = session.get(DirectoryUnit, person.unit_id) if person else None
            session.add(Interviewee(interview_id=interview.id, person_id=person.id if person else None,
                                    name=person.name if person else p["name"], post=person.post if person else "",
                                    title=person.title if person else p.get("title", ""),
                                    unit_id=person.unit_id if person else None, unit_name=unit.name if unit else ""))
    session.flush()
    return interview


def _context(finding: Finding, interview: Interview, recipient_name: str) -> dict:
    return {**ladder.finding_context(finding, recipient_name=recipient_name,
                                     reason=f"约谈（{interview.unit_name}）"),
            "interview_no": interview.interview_no,
            "scheduled_at": interview.scheduled_at.isoformat() if interview.scheduled_at else "",
            "place": interview.place, "convening_body": interview.convening_body, "chair": interview.chair}


def schedule(session: Session, runtime: ServiceRuntime, interview: Interview, data: dict, *, by: str) -> Interview:
    """Fix time and place (scheduled) and send the 约谈通知 (notice ``interview``) to each person called in."""
    _check(interview, "schedule")
    if data:
        edit(session, interview, data)
    errors = {k: ["必填"] for k in ("scheduled_at", "place", "convening_body", "chair") if not getattr(interview, k)}
    if not people(session, interview.id):
        errors["interviewees"] = ["至少需要一名被约谈人"]
    if errors:
        raise findings_mod.BadInput("安排约谈缺少必要信息", errors)
    interview.status = "scheduled"
    finding = session.get(Finding, interview.finding_id)
    cycle = f"{interview.interview_no}:{int(interview.scheduled_at.timestamp())}"
    for p in people(session, interview.id):
        if p.person_id is None:
            continue
        ladder.request_notice(session, runtime, finding, notice_type="interview",
                              recipient=("person", p.person_id, p.name, p.unit_id), cycle=cycle,
                              context=_context(finding, interview, p.name), urgent=True)
    findings_mod.record(session, finding, action="interview_scheduled", actor=by, at=clock.now(),
                        reason=f"约谈 {interview.interview_no} 定于 {interview.scheduled_at.isoformat()} 在{interview.place}",
                        from_status=finding.status, data={"interview_id": interview.id})
    return interview


def record(session: Session, interview: Interview, data: dict, *, by: str) -> Interview:
    """The 约谈记录: problems pointed out, statements of commitment (表态发言), attendees, recorder → held."""
    _check(interview, "record")
    statements = {int(s["interviewee_id"]): s["statement"] for s in data.get("statements", [])}
    rows = {p.id: p for p in people(session, interview.id)}
    unknown = [i for i in statements if i not in rows]
    if unknown:
        raise findings_mod.BadInput("表态发言对应的被约谈人不存在", {"statements": [f"未知被约谈人 {unknown}"]})
    if not str(data.get("problems") or interview.problems).strip():
        raise findings_mod.BadInput("约谈记录需要指出的问题", {"problems": ["必填"]})
    for key in ("problems", "recorder", "attendees"):
        if key in data:
            setattr(interview, key, data[key])
    for i, text in statements.items():
        rows[i].statement = text
    if interview.status == "scheduled":
        interview.status, interview.held_at = "held", data.get("held_at") or clock.now()
    return interview


def add_item(session: Session, runtime: ServiceRuntime, interview: Interview, data: dict) -> RectificationItem:
    """A rectification item (整改事项) with owner and deadline; the owner gets a 整改提醒."""
    _check(interview, "add_item")
    owner = session.get(DirectoryPerson, data["owner_person_id"]) if data.get("owner_person_id") else None
    if data.get("owner_person_id") and owner is None:
        raise findings_mod.BadInput("责任人不在目录中", {"owner_person_id": ["未知人员"]})
    item = RectificationItem(interview_id=interview.id, finding_id=interview.finding_id, content=data["content"],
                             owner_person_id=owner.id if owner else None,
                             owner_name=owner.name if owner else data.get("owner_name", ""), due_at=data["due_at"],
                             status="open")
    if not item.owner_name:
        raise findings_mod.BadInput("整改事项需要责任人", {"owner_name": ["必填"]})
    session.add(item)
    session.flush()
    _item_notice(session, runtime, interview, item, cycle=f"item{item.id}")
    return item


def _item_notice(session: Session, runtime: ServiceRuntime, interview: Interview, item: RectificationItem, *,
                 cycle: str) -> None:
    finding = session.get(Finding, item.finding_id) if item.finding_id else None
    if finding is None or item.owner_person_id is None:
        return
    owner = session.get(DirectoryPerson, item.owner_person_id)
    context = {**ladder.finding_context(finding, recipient_name=item.owner_name,
                                        reason=f"约谈 {interview.interview_no} 整改事项"),
               "item_content": item.content, "item_due_at": item.due_at.isoformat()}
    ladder.request_notice(session, runtime, finding, notice_type="rectification",
                          recipient=("person", item.owner_person_id, item.owner_name, owner.unit_id if owner else None),
                          cycle=cycle, context=context)


def item_action(session: Session, item: RectificationItem, action: str, *, by: str, note: str = "") -> RectificationItem:
    """done (by the owner's side, with a note) or verify (by a supervisor)."""
    allowed = {"open": ["done", "verify"], "done": ["verify"], "verified": []}[item.status]
    if action not in allowed:
        raise InterviewConflict(f"整改事项状态为 {item.status}，不能{action}", allowed)
    if action == "done":
        if not note.strip():
            raise findings_mod.BadInput("需要整改情况说明", {"note": ["必填"]})
        item.status, item.note = "done", note
    else:
        item.status, item.verified_by, item.verified_at = "verified", by, clock.now()
        item.note = note or item.note
    return item


def close(session: Session, interview: Interview) -> Interview:
    _check(interview, "close")
    open_items = [i.id for i in items(session, interview.id) if i.status != "verified"]
    if open_items:
        raise InterviewConflict(f"还有未核验的整改事项 {open_items}", [])
    interview.status, interview.closed_at = "closed", clock.now()
    return interview


# ---------------------------------------------------------------- overdue rectification items


def item_sweep(runtime: ServiceRuntime) -> dict[str, int]:
    """An item past its deadline and not verified climbs its finding one rung (once per item)."""
    climbed = failed = 0
    now = clock.now()
    with runtime.uow() as session:
        stmt = (select(RectificationItem).where(RectificationItem.status != "verified",
                                                RectificationItem.overdue_climbed_at.is_(None),
                                                RectificationItem.due_at <= now)
                .order_by(RectificationItem.due_at).limit(ITEM_BATCH))
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        for item in session.scalars(stmt):
            try:
                with session.begin_nested():
                    item.overdue_climbed_at = now
                    finding = session.get(Finding, item.finding_id) if item.finding_id else None
                    if finding is None or finding.status == "closed":
                        continue
                    interview = session.get(Interview, item.interview_id)
                    from supervise_svc.domain.ladder import next_rung

                    target = next_rung(finding.rung)
                    if target is not None and ladder.enter_rung(
                            session, runtime, finding, target, decided_by="rule:interview_item_overdue", at=now,
                            reason=f"约谈 {interview.interview_no} 的整改事项“{item.content}”逾期未核验") is not None:
                        climbed += 1
                    _item_notice(session, runtime, interview, item, cycle=f"item{item.id}:overdue")
            except Exception:
                log.exception("rectification item %s: overdue climb failed; skipped", item.id)
                failed += 1
    return {"climbed": climbed, "failed": failed}
