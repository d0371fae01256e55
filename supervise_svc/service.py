"""supervise_svc projections: fold intake's and assign's events into the case read model."""
from __future__ import annotations

from sqlalchemy.orm import Session

from shared.contracts import CaseAssigned, PetitionRegistered
from supervise_svc.models import CaseView


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
