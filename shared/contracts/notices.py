"""notice.requested: any service asks notify_svc for a notice."""
from __future__ import annotations

from dataclasses import dataclass, field

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
