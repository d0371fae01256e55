"""supervise_svc projections: fold intake's and assign's events into the case read model."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.contracts import CaseActionRecorded, CaseAssigned, DirectoryChanged, PetitionRegistered
from supervise_svc.models import CaseAction, CaseView, DirectoryPerson, DirectoryUnit


def _view(session: Session, petition_id: str, **defaults) -> CaseView:
    view = session.get(CaseView, petition_id)
    if view is None:
        view = CaseView(petition_id=petition_id, **defaults)
        session.add(view)
    return view


def project_petition_registered(session: Session, event: PetitionRegistered) -> CaseView:
    view = _view(session, event.petition_id, status="registered")
    view.display_no, view.region_code, view.category = event.display_no, event.region_code, event.category
    view.registered_at, view.request_text, view.flags = event.registered_at, event.request_text, dict(event.flags)
    return view


def project_case_assigned(session: Session, event: CaseAssigned) -> CaseView:
    view = _view(session, event.petition_id, flags={})
    view.display_no, view.region_code, view.category = event.display_no, event.region_code, event.category
    view.case_id, view.unit_id, view.unit_name = event.case_id, event.unit_id, event.unit_name
    view.assigned_at, view.due_at, view.deadline_basis = event.assigned_at, event.due_at, event.deadline_basis
    view.status = "assigned"
    return view


def project_directory_changed(session: Session, event: DirectoryChanged) -> int:
    """Keep a copy of the directory: apply each record only if its version is newer than ours."""
    applied = 0
    units = {u.id: u for u in session.scalars(select(DirectoryUnit).where(
        DirectoryUnit.id.in_([d["id"] for d in event.units])))} if event.units else {}
    people = {p.id: p for p in session.scalars(select(DirectoryPerson).where(
        DirectoryPerson.id.in_([d["id"] for d in event.people])))} if event.people else {}
    for data in event.units:
        row = units.get(data["id"])
        if row is not None and row.version >= event.version:
            continue
        row = row or DirectoryUnit(id=data["id"])
        row.name, row.kind, row.level, row.region_code = data["name"], data["kind"], data["level"], data["region_code"]
        row.parent_id, row.peer_group = data.get("parent_id"), data.get("peer_group")
        row.active, row.version = bool(data.get("active", True)), event.version
        session.add(row)
        applied += 1
    for data in event.people:
        row = people.get(data["id"])
        if row is not None and row.version >= event.version:
            continue
        row = row or DirectoryPerson(id=data["id"])
        row.unit_id, row.name, row.post = data["unit_id"], data["name"], data["post"]
        row.title, row.leader = data.get("title") or "", bool(data.get("leader"))
        row.active, row.version = bool(data.get("active", True)), event.version
        session.add(row)
        applied += 1
    return applied


def project_case_action(session: Session, event: CaseActionRecorded, event_id: str) -> None:
    """Record the action; the read model follows the case's unit and headline deadline."""
    if session.get(CaseAction, event_id) is None:
        session.add(CaseAction(event_id=event_id, case_id=event.case_id, action=event.action, status=event.status,
                               at=event.at, actor=event.actor, reason=event.reason, data=dict(event.data),
                               stages=list(event.stages)))
    view = session.get(CaseView, event.petition_id)
    if view is not None and event.action == "reroute":
        view.unit_id = event.unit_id
