"""Contracts produced by assign_svc about cases (case.*)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from marshmallow import fields, validate

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
    mode: str = "assign"  # assign (交办) | forward (转送) | divert (涉法涉诉, leaves the clock)
    in_clock: bool = True
    leader_id: str | None = None
    leader_name: str | None = None


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
    mode = fields.String(load_default="assign")
    in_clock = fields.Boolean(load_default=True)
    leader_id = fields.String(load_default=None, allow_none=True)
    leader_name = fields.String(load_default=None, allow_none=True)


register("case.assigned", 1, CaseAssignedSchema, consumers=[("supervise", "supervise.case_assigned")])


#: Case states (办理状态) as real systems show them (domain.md §3).
CASE_STATES = (
    "待签收", "已签收待办理", "已受理待送达", "办理中", "已处理待送达", "已送达待评价", "已办结", "已存档",
    "退回", "不予受理", "不再受理", "延期申请", "已延期", "待补充材料", "复查中", "复核中", "复核已完成", "终结",
)


def comes_after(at: datetime, seq: int | None, last_at: datetime | None, last_seq: int | None) -> bool:
    """A case's event at (``at``, ``seq``) is after the last one a consumer applied (``last_at``, ``last_seq``).

    Several actions of a case share one instant (受理 + 送达受理告知书, the 逐级审签 sign-offs) and their
    events may arrive in either order: at one instant the higher ``seq`` (assign's per-case event number)
    is the later.  At one instant without a seq on either side the event counts as later (arrival order,
    the rule before seq was carried)."""
    if last_at is None or at > last_at:
        return True
    if at < last_at:
        return False
    return seq is None or last_seq is None or seq > last_seq


@dataclass(frozen=True, kw_only=True)
class CaseStatusChanged:
    """case.status_changed v1 — a case moved to another state (签收, 受理, 办结, 复核 …).

    ``resolved`` is true once the case counts as 化解 (substantively resolved) or 办结;
    ``final`` is true when the matter can no longer be reopened (复核 completed, 终结).
    ``seq`` is the action's number in the case's timeline (办理过程, 1, 2, …): several actions share one
    instant (受理 + 送达受理告知书, the 逐级审签 sign-offs), so a consumer orders a case's events by
    (``changed_at``, ``seq``); ``None`` from producers before it was added.
    """

    case_id: str
    petition_id: str
    display_no: str
    unit_id: str
    region_code: str
    status: str
    previous_status: str
    changed_at: datetime
    actor: str
    reason: str = ""
    resolved: bool = False
    final: bool = False
    seq: int | None = None


class CaseStatusChangedSchema(PayloadSchema):
    __payload__ = CaseStatusChanged
    case_id = fields.String(required=True)
    petition_id = fields.String(required=True)
    display_no = fields.String(required=True)
    unit_id = fields.String(required=True)
    region_code = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(CASE_STATES))
    previous_status = fields.String(required=True)
    changed_at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    reason = fields.String(load_default="")
    resolved = fields.Boolean(load_default=False)
    final = fields.Boolean(load_default=False)
    seq = fields.Integer(load_default=None, allow_none=True)


register("case.status_changed", 1, CaseStatusChangedSchema, consumers=[("intake", "intake.case_status_changed")])


@dataclass(frozen=True, kw_only=True)
class CaseActionRecorded:
    """case.action_recorded v1 — one action of a case's handling (签收, 受理, 延期, 处理意见, 送达,
    评价, 结案, 复查 …), with who, when and why; the case's open stages after it.

    ``data`` holds the action's particulars (e.g. the opinion's outcome, the grades, the
    closure checklist); ``stages`` lists the open stages: kind, due_at, warn_at, basis (ISO times).
    ``seq``: the action's number in the case's timeline, as in ``case.status_changed`` — a case's
    actions are ordered by (``at``, ``seq``); ``None`` from producers before it was added.
    """

    case_id: str
    petition_id: str
    display_no: str
    unit_id: str
    region_code: str
    action: str
    label: str
    status: str
    previous_status: str
    at: datetime
    actor: str
    actor_role: str
    reason: str = ""
    leader_id: str | None = None
    data: dict = field(default_factory=dict)
    stages: list = field(default_factory=list)
    seq: int | None = None


class CaseActionRecordedSchema(PayloadSchema):
    __payload__ = CaseActionRecorded
    case_id = fields.String(required=True)
    petition_id = fields.String(required=True)
    display_no = fields.String(required=True)
    unit_id = fields.String(required=True)
    region_code = fields.String(required=True)
    action = fields.String(required=True)
    label = fields.String(required=True)
    status = fields.String(required=True)
    previous_status = fields.String(required=True)
    at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    actor_role = fields.String(required=True)
    reason = fields.String(load_default="")
    leader_id = fields.String(load_default=None, allow_none=True)
    data = fields.Dict(load_default=dict)
    stages = fields.List(fields.Dict(), load_default=list)
    seq = fields.Integer(load_default=None, allow_none=True)


register("case.action_recorded", 1, CaseActionRecordedSchema,
         consumers=[("supervise", "supervise.case_action_recorded")])
