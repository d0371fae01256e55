"""Contracts produced by intake_svc."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from marshmallow import EXCLUDE, Schema, fields, validate

from shared.contracts.base import PayloadSchema, register


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


class PetitionRegisteredSchema(PayloadSchema):
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


register("petition.registered", 1, PetitionRegisteredSchema,
         consumers=[("assign", "assign.petition_registered"), ("supervise", "supervise.petition_registered")])
