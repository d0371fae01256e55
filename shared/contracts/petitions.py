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
    petitioner_name: str  # （保密） for accusations, confidential and anonymous petitions
    registered_at: datetime
    flags: dict = field(default_factory=dict)
    # Added compatibly in v1 (consumers read them with defaults):
    category_code: str | None = None  # 内容分类 code, e.g. "0302"; ``category`` is the classic first-level name
    classic_code: str | None = None
    title: str = ""
    purpose: str | None = None  # 信访目的
    statutory_type: str | None = None  # 申诉求决类 / 检举控告类 / 建议意见类
    legal_litigation: bool = False  # 涉法涉诉
    group_visit: bool = False  # 集体访
    urgent: bool = False
    people_count: int = 1
    confidential: bool = False
    registrar_level: str | None = None  # level that registered it: province / city / county / township
    petitioned_at: datetime | None = None


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
    category_code = fields.String(load_default=None, allow_none=True)
    classic_code = fields.String(load_default=None, allow_none=True)
    title = fields.String(load_default="")
    purpose = fields.String(load_default=None, allow_none=True)
    statutory_type = fields.String(load_default=None, allow_none=True)
    legal_litigation = fields.Boolean(load_default=False)
    group_visit = fields.Boolean(load_default=False)
    urgent = fields.Boolean(load_default=False)
    people_count = fields.Integer(load_default=1)
    confidential = fields.Boolean(load_default=False)
    registrar_level = fields.String(load_default=None, allow_none=True)
    petitioned_at = fields.AwareDateTime(load_default=None, allow_none=True)


register("petition.registered", 1, PetitionRegisteredSchema,
         consumers=[("assign", "assign.petition_registered"), ("supervise", "supervise.petition_registered")])
