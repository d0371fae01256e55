"""Contracts produced by assign_svc about cases (case.*)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marshmallow import fields

from shared.contracts.base import PayloadSchema, register


@dataclass(frozen=True, kw_only=True)
class CaseAssigned:
    """case.assigned v1 — assign_svc handed a petition to a responsible unit (交办)."""

    case_id: str
    petition_id: str
    display_no: str
    unit_id: str
    unit_name: str
    region_code: str
    category: str
    assigned_at: datetime
    due_at: datetime
    deadline_basis: str


class CaseAssignedSchema(PayloadSchema):
    __payload__ = CaseAssigned
    case_id = fields.String(required=True)
    petition_id = fields.String(required=True)
    display_no = fields.String(required=True)
    unit_id = fields.String(required=True)
    unit_name = fields.String(required=True)
    region_code = fields.String(required=True)
    category = fields.String(required=True)
    assigned_at = fields.AwareDateTime(required=True)
    due_at = fields.AwareDateTime(required=True)
    deadline_basis = fields.String(required=True)


register("case.assigned", 1, CaseAssignedSchema, consumers=[("supervise", "supervise.case_assigned")])
