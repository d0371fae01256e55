"""Contracts produced by supervise_svc about findings (督查件)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marshmallow import fields, validate

from shared.contracts.base import PayloadSchema, register

#: The five must-checks (五必查): rule code -> Chinese label.
FINDING_RULES = {
    "overdue": "没有按期化解",
    "reflow": "化解后回流",
    "dissatisfied": "回访中群众不满意",
    "not_carried_out": "应付上报化解意见不落实",
    "lagging": "工作被动落后",
}

#: Finding lifecycle: open → rectifying → rectified → verified → closed, or reopened.
FINDING_STATES = ("open", "rectifying", "rectified", "verified", "closed", "reopened")

#: Default escalation rungs (督办阶梯), lowest first.
LADDER_RUNGS = {
    "urge": "催办", "supervision_order": "督办", "bulletin": "通报", "warning": "警示",
    "interview": "约谈", "listed": "挂牌督办", "accountability": "问责",
}


@dataclass(frozen=True, kw_only=True)
class FindingChanged:
    """finding.changed v1 — a finding (督查件) was opened, changed state, or climbed a rung.

    notify_svc uses it to know whether a finding named by a notice's ``subject_id`` is still
    open (an acknowledged notice whose finding stays open re-notifies).
    """

    finding_id: str
    finding_no: str
    rule: str
    subject_kind: str  # case | unit
    subject_id: str
    unit_id: str
    region_code: str
    status: str
    rung: str | None
    changed_at: datetime
    case_id: str | None = None
    leader_id: str | None = None
    reason: str = ""


class FindingChangedSchema(PayloadSchema):
    __payload__ = FindingChanged
    finding_id = fields.String(required=True)
    finding_no = fields.String(required=True)
    rule = fields.String(required=True, validate=validate.OneOf(list(FINDING_RULES)))
    subject_kind = fields.String(required=True, validate=validate.OneOf(["case", "unit"]))
    subject_id = fields.String(required=True)
    unit_id = fields.String(required=True)
    region_code = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(FINDING_STATES))
    rung = fields.String(load_default=None, allow_none=True, validate=validate.OneOf(list(LADDER_RUNGS)))
    changed_at = fields.AwareDateTime(required=True)
    case_id = fields.String(load_default=None, allow_none=True)
    leader_id = fields.String(load_default=None, allow_none=True)
    reason = fields.String(load_default="")


register("finding.changed", 1, FindingChangedSchema, consumers=[("notify", "notify.finding_changed")])
