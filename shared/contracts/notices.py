"""notice.requested: any service asks notify_svc for a notice."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from marshmallow import fields, validate

from shared.contracts.base import PayloadSchema, register


@dataclass(frozen=True, kw_only=True)
class NoticeRequested:
    """notice.requested v1 — a service asks notify_svc to deliver a notice (通知).

    ``dedupe_key`` identifies (type, subject, recipient, cycle): a repeated
    request with the same key is a no-op at notify_svc.
    """

    notice_type: str
    dedupe_key: str
    recipient_kind: str
    recipient_id: str
    recipient_name: str
    subject_id: str
    urgency: str = "normal"
    context: dict = field(default_factory=dict)


class NoticeRequestedSchema(PayloadSchema):
    __payload__ = NoticeRequested
    notice_type = fields.String(required=True)
    dedupe_key = fields.String(required=True)
    recipient_kind = fields.String(required=True, validate=validate.OneOf(["unit", "person"]))
    recipient_id = fields.String(required=True)
    recipient_name = fields.String(required=True)
    subject_id = fields.String(required=True)
    urgency = fields.String(load_default="normal", validate=validate.OneOf(["normal", "urgent"]))
    context = fields.Dict(load_default=dict)


register("notice.requested", 1, NoticeRequestedSchema, consumers=[("notify", "notify.notice_requested")])


@dataclass(frozen=True, kw_only=True)
class NoticeAcknowledged:
    """notice.acknowledged v1 — a recipient acknowledged (签收) a notice.

    ``via`` is inbox | link | api; ``unit_id`` is the recipient's unit (for a person) or the
    unit itself, so supervise can count unanswered notices against a unit.
    """

    notice_id: str
    dedupe_key: str
    notice_type: str
    subject_id: str
    recipient_kind: str
    recipient_id: str
    unit_id: str | None
    acknowledged_at: datetime
    via: str = "inbox"
    created_at: datetime | None = None
    ack_due_at: datetime | None = None


class NoticeAcknowledgedSchema(PayloadSchema):
    __payload__ = NoticeAcknowledged
    notice_id = fields.String(required=True)
    dedupe_key = fields.String(required=True)
    notice_type = fields.String(required=True)
    subject_id = fields.String(required=True)
    recipient_kind = fields.String(required=True, validate=validate.OneOf(["unit", "person"]))
    recipient_id = fields.String(required=True)
    unit_id = fields.String(load_default=None, allow_none=True)
    acknowledged_at = fields.AwareDateTime(required=True)
    via = fields.String(load_default="inbox", validate=validate.OneOf(["inbox", "link", "api"]))
    created_at = fields.AwareDateTime(load_default=None, allow_none=True)
    ack_due_at = fields.AwareDateTime(load_default=None, allow_none=True)


register("notice.acknowledged", 1, NoticeAcknowledgedSchema,
         consumers=[("supervise", "supervise.notice_acknowledged")])


@dataclass(frozen=True, kw_only=True)
class NoticeEscalated:
    """notice.escalated v1 — a notice was not acknowledged in time and climbed its chain.

    ``step`` is remind | superior | upper_petition_dept | renotify (acknowledged but the
    finding stayed open); ``to_*`` name who was notified at this step.
    """

    notice_id: str
    dedupe_key: str
    notice_type: str
    subject_id: str
    recipient_kind: str
    recipient_id: str
    unit_id: str | None
    step: str
    to_kind: str
    to_id: str
    to_name: str
    escalated_at: datetime
    reason: str = ""


class NoticeEscalatedSchema(PayloadSchema):
    __payload__ = NoticeEscalated
    notice_id = fields.String(required=True)
    dedupe_key = fields.String(required=True)
    notice_type = fields.String(required=True)
    subject_id = fields.String(required=True)
    recipient_kind = fields.String(required=True, validate=validate.OneOf(["unit", "person"]))
    recipient_id = fields.String(required=True)
    unit_id = fields.String(load_default=None, allow_none=True)
    step = fields.String(required=True, validate=validate.OneOf(["remind", "superior", "upper_petition_dept",
                                                                   "renotify"]))
    to_kind = fields.String(required=True, validate=validate.OneOf(["unit", "person"]))
    to_id = fields.String(required=True)
    to_name = fields.String(required=True)
    escalated_at = fields.AwareDateTime(required=True)
    reason = fields.String(load_default="")


register("notice.escalated", 1, NoticeEscalatedSchema, consumers=[("supervise", "supervise.notice_escalated")])
