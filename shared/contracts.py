"""Versioned message contracts between services (消息契约).

Every message is an ``Envelope`` (type, version, id, occurred_at, producer,
correlation_id, payload).  Each payload type is a frozen dataclass with a
marshmallow schema, registered under ``(type, version)``.  A producer never
imports a consumer: ``ROUTES`` says which queue and actor name receive each
message type, and the outbox relay enqueues by those names.

Changing a payload incompatibly means a new version; consumers keep accepting
the old one until every producer has moved.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate

# ---------------------------------------------------------------- payloads


class _PayloadSchema(Schema):
    """Builds the payload dataclass on load; unknown keys are ignored (forward compatible)."""

    class Meta:
        unknown = EXCLUDE

    __payload__: ClassVar[type]

    @post_load
    def _make(self, data: dict, **_: Any):
        return self.__payload__(**data)


class RepeatFlagsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    repeat_of = fields.String(load_default=None, allow_none=True)
    reflow = fields.Boolean(load_default=False)
    cross_level = fields.Boolean(load_default=False)
    no_longer_accepted = fields.Boolean(load_default=False)


@dataclass(frozen=True, kw_only=True)
class PetitionRegistered:
    """petition.registered v1 — a petition (信访件) was registered at intake."""

    petition_id: str
    display_no: str
    system: str
    county_no: str | None
    region_code: str
    category: str
    channel: str
    request_text: str
    petitioner_name: str
    registered_at: datetime
    flags: dict = field(default_factory=dict)


class PetitionRegisteredSchema(_PayloadSchema):
    __payload__ = PetitionRegistered
    petition_id = fields.String(required=True)
    display_no = fields.String(required=True)
    system = fields.String(required=True)
    county_no = fields.String(load_default=None, allow_none=True)
    region_code = fields.String(required=True, validate=validate.Regexp(r"^\d{6}(\d{6})?$"))
    category = fields.String(required=True)
    channel = fields.String(required=True)
    request_text = fields.String(required=True)
    petitioner_name = fields.String(required=True)
    registered_at = fields.AwareDateTime(required=True)
    flags = fields.Nested(RepeatFlagsSchema, load_default=dict)


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


class CaseAssignedSchema(_PayloadSchema):
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


class NoticeRequestedSchema(_PayloadSchema):
    __payload__ = NoticeRequested
    notice_type = fields.String(required=True)
    dedupe_key = fields.String(required=True)
    recipient_kind = fields.String(required=True, validate=validate.OneOf(["unit", "person"]))
    recipient_id = fields.String(required=True)
    recipient_name = fields.String(required=True)
    subject_id = fields.String(required=True)
    urgency = fields.String(load_default="normal", validate=validate.OneOf(["normal", "urgent"]))
    context = fields.Dict(load_default=dict)


#: (type, version) -> payload schema class
PAYLOADS: dict[tuple[str, int], type[_PayloadSchema]] = {
    ("petition.registered", 1): PetitionRegisteredSchema,
    ("case.assigned", 1): CaseAssignedSchema,
    ("notice.requested", 1): NoticeRequestedSchema,
}

#: message type -> [(queue_name, actor_name)]: who consumes what.  Queue = the consumer service.
ROUTES: dict[str, list[tuple[str, str]]] = {
    "petition.registered": [("assign", "assign.petition_registered"),
                            ("supervise", "supervise.petition_registered")],
    "case.assigned": [("supervise", "supervise.case_assigned")],
    "notice.requested": [("notify", "notify.notice_requested")],
}


def _type_of(payload: Any) -> tuple[str, int]:
    for key, schema in PAYLOADS.items():
        if isinstance(payload, schema.__payload__):
            return key
    raise TypeError(f"{type(payload).__name__} is not a registered contract payload")


# ---------------------------------------------------------------- envelope


@dataclass(frozen=True, kw_only=True)
class Envelope:
    type: str
    version: int
    id: str
    occurred_at: datetime
    producer: str
    correlation_id: str
    payload: Any


class EnvelopeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True)
    version = fields.Integer(required=True, strict=True)
    id = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True)
    producer = fields.String(required=True)
    correlation_id = fields.String(load_default="")
    payload = fields.Dict(required=True)


def dump_envelope(envelope: Envelope) -> dict:
    """Envelope -> JSON-ready dict (payload validated by its schema)."""
    schema = PAYLOADS[(envelope.type, envelope.version)]()
    data = dataclasses.asdict(envelope)
    data["payload"] = schema.dump(envelope.payload)
    return EnvelopeSchema().dump(data)


def load_envelope(data: dict) -> Envelope:
    """JSON dict -> Envelope with a typed payload; ValidationError on a bad message."""
    raw = EnvelopeSchema().load(data)
    key = (raw["type"], raw["version"])
    if key not in PAYLOADS:
        raise ValidationError({"type": [f"unknown message type/version {key}"]})
    raw["payload"] = PAYLOADS[key]().load(raw["payload"])
    return Envelope(**raw)


def envelope_for(payload: Any, *, id: str, occurred_at: datetime, producer: str, correlation_id: str) -> Envelope:
    mtype, version = _type_of(payload)
    return Envelope(type=mtype, version=version, id=id, occurred_at=occurred_at,
                    producer=producer, correlation_id=correlation_id, payload=payload)
