"""assign_svc use case: a registered petition becomes a case (交办/转送).  Never commits.

Route by 属地 + 归口 rules, pick the owning leader by rule, open the deadline stages under
the policies in force, record who registered and who assigned (谁登记、谁交办), announce it.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from assign_svc import documents, notices, stages, timeline
from assign_svc.domain.categories import normalize
from assign_svc.domain.leaders import owning_leader
from assign_svc.domain.routing import PetitionFacts, route
from assign_svc.domain.workflow import PENDING_SIGNATURE
from assign_svc.models import Case
from assign_svc.rules import Snapshot, snapshot
from assign_svc.versions import versions_with
from shared.contracts import CaseAssigned, PetitionRegistered
from shared.db import new_id
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

#: Stages every routed case opens at the unit: 受理告知 and the 5-working-day objection window.
RECEIPT_STEPS = ("acceptance_notice", "objection")
#: The basis shown on a diverted (涉法涉诉) case instead of a petition deadline.
DIVERTED_BASIS = "涉法涉诉信访事项导入法律程序处理，不计入信访办理期限"
#: Who issues the 交办单 (the petition department's working body).
ASSIGNMENT_ISSUER = "信访工作机构"


def facts_from(petition: PetitionRegistered) -> PetitionFacts:
    """Routing facts from the v1 payload; optional fields the lead is adding are read defensively."""
    flags = dict(getattr(petition, "flags", None) or {})
    return PetitionFacts(
        region_code=petition.region_code, category=normalize(petition.category),
        statutory_type=getattr(petition, "statutory_type", None), purpose=getattr(petition, "purpose", None),
        channel=getattr(petition, "channel", None), legal_litigation=bool(getattr(petition, "legal_litigation", False)),
        group_visit=bool(getattr(petition, "group_visit", False)) or int(getattr(petition, "people_count", 1) or 1) >= 5,
        cross_level=bool(flags.get("cross_level")), repeat=bool(flags.get("repeat_of")) or bool(flags.get("reflow")),
        urgent=bool(getattr(petition, "urgent", False)), text=petition.request_text or "")


def cache_of(runtime: ServiceRuntime) -> dict:
    return runtime.extras.setdefault("assign_cache", {})


def headline(session: Session, runtime: ServiceRuntime, snap: Snapshot, case: Case, at: datetime,
             assigned: list | None = None) -> None:
    """The case's headline deadline: the assigned stage if 交办, else the projected handling period."""
    if not case.in_clock:
        projected = stages.open_stage(session, runtime, snap, case, "handling", started_at=at, add=False)
        case.due_at, case.deadline_basis = projected.due_at, DIVERTED_BASIS
        return
    if assigned is None:
        assigned = stages.open_stages(session, case.id, ["assigned"])
    if assigned:
        case.due_at, case.deadline_basis = assigned[0].due_at, assigned[0].basis[:128]
        return
    projected = stages.open_stage(session, runtime, snap, case, "handling", started_at=at, add=False)
    case.due_at, case.deadline_basis = projected.due_at, projected.basis[:128]


def open_receipt_stages(session: Session, runtime: ServiceRuntime, snap: Snapshot, case: Case, *, at: datetime,
                        assigned_days: int | None = None) -> list:
    """At the unit's receipt: 受理告知 + 异议 windows, and the 交办 deadline when assigned.  Returns the stages."""
    if not case.in_clock:
        headline(session, runtime, snap, case, at, assigned=[])
        return []
    opened = [stages.open_stage(session, runtime, snap, case, step, started_at=at) for step in RECEIPT_STEPS]
    if case.mode == "assign":
        opened.append(stages.open_stage(session, runtime, snap, case, "assigned", started_at=at,
                                        length_days=assigned_days))
    headline(session, runtime, snap, case, at, assigned=[s for s in opened if s.kind == "assigned"])
    return opened


def file_assignment_sheet(session: Session, runtime: ServiceRuntime, case: Case, *, unit_name: str, leader_name: str,
                          at: datetime, created_by: str) -> None:
    """File the 信访事项交办单 in the dossier (rendered lazily at the first download)."""
    tz = runtime.settings.timezone
    fields = documents.case_fields(case, tz=tz, unit_name=unit_name, leader_name=leader_name)
    documents.file_lazily(session, case, "assignment_sheet", fields, issuer=ASSIGNMENT_ISSUER, at=at, tz=tz,
                          created_by=created_by)


def assign_petition(session: Session, runtime: ServiceRuntime, petition: PetitionRegistered) -> Case:
    """Route a registered petition to its responsible unit, set its deadlines, announce it."""
    # one round trip for both: the case already made from this petition (a re-sent message) and the
    # configuration versions the cached snapshot is checked against
    versions, existing_id = versions_with(
        session, select(Case.id).where(Case.petition_id == petition.petition_id).scalar_subquery())
    if existing_id is not None:
        return session.get(Case, existing_id)
    snap = snapshot(session, cache_of(runtime), versions)
    facts = facts_from(petition)
    decision = route(snap.routing, snap.units, facts)
    unit = decision.unit
    leader = owning_leader(snap.leaders, snap.units, snap.people, unit, facts)
    flags = dict(getattr(petition, "flags", None) or {})
    flags.update({k: getattr(petition, k) for k in ("group_visit", "urgent", "people_count", "confidential")
                  if hasattr(petition, k)})
    if facts.group_visit:
        flags["group_visit"] = True
    assigned_at = petition.registered_at
    case = Case(id=new_id(), petition_id=petition.petition_id, display_no=petition.display_no, unit_id=unit.id,
                region_code=petition.region_code, category=facts.category, status=PENDING_SIGNATURE,
                assigned_at=assigned_at, due_at=assigned_at, deadline_basis="", mode=decision.mode,
                in_clock=decision.in_clock, statutory_type=facts.statutory_type, purpose=facts.purpose,
                channel=facts.channel, flags=flags, petitioner_name=petition.petitioner_name,
                request_text=petition.request_text, registered_at=petition.registered_at,
                leader_id=leader[0].id if leader else None, leader_basis=leader[1].name if leader else None,
                routing_rule_id=decision.rule.id, routing_version=snap.versions[1],
                directory_version=snap.versions[0],
                registered_by=getattr(petition, "registrar", None) or petition.system,
                assigned_by=f"规则：{decision.rule.name}", updated_at=assigned_at)
    session.add(case)
    opened = open_receipt_stages(session, runtime, snap, case, at=assigned_at)
    label = {"assign": "交办", "forward": "转送", "divert": "涉法涉诉分流"}[decision.mode]
    timeline.record(session, runtime, case, action="assign", label=label, previous="", actor_id="system",
                    actor_name="分办规则", actor_role="system", at=assigned_at,
                    reason=f"{decision.rule.name}（规则 {decision.rule.id}）",
                    data={"unit_id": unit.id, "leader_id": case.leader_id, "mode": decision.mode},
                    seq=1, open_now=opened)
    leader_info = snap.people_by_id.get(case.leader_id) if case.leader_id else None
    runtime.emit(session, CaseAssigned(
        case_id=case.id, petition_id=case.petition_id, display_no=case.display_no, unit_id=unit.id,
        unit_name=unit.name, region_code=case.region_code, category=case.category,
        assigned_at=case.assigned_at, due_at=case.due_at, deadline_basis=case.deadline_basis, mode=case.mode,
        in_clock=case.in_clock, leader_id=case.leader_id, leader_name=leader_info.name if leader_info else None))
    notices.assignment(session, runtime, case, unit_name=unit.name, leader=leader_info, cycle=1)
    if case.mode == "assign":  # 交办 files the 交办单 (转送 and 涉法涉诉分流 do not)
        file_assignment_sheet(session, runtime, case, unit_name=unit.name,
                              leader_name=leader_info.name if leader_info else "", at=assigned_at,
                              created_by="分办规则")
    log.info("petition %s routed to %s by %s as case %s", petition.display_no, unit.id, decision.rule.id, case.id)
    return case
