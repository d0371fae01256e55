"""Input, output and query schemas of the petition API.

Every field is validated; the API answers 422 with every failing field and its
reason (English, with the Chinese term) and stores nothing.
"""
from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates, validates_schema

from intake_svc.codes.categories import CategoryTable
from intake_svc.codes.regions import RegionTable
from intake_svc.domain.rules import CHANNELS, PURPOSES, channel_violations
from shared import clock
from shared.identity import IdentityError, normalize_id_number, normalize_phone

#: Tolerated clock skew between a county system and us when checking "not in the future".
CLOCK_SKEW = timedelta(minutes=5)


@lru_cache(maxsize=1)
def categories() -> CategoryTable:
    return CategoryTable.load()


@lru_cache(maxsize=1)
def regions() -> RegionTable:
    return RegionTable.load()


def _check_region(value: str) -> None:
    if not regions().is_valid(value):
        raise ValidationError(f"unknown region code {value} (行政区划代码不存在)")


def _nest(errors: dict, dotted: str, message: str) -> None:
    """Put ``message`` at ``petitioners.0.id_number`` the way marshmallow nests field errors."""
    *parents, leaf = [int(p) if p.isdigit() else p for p in dotted.split(".")]
    node = errors
    for part in parents:
        node = node.setdefault(part, {})
    if isinstance(node.get(leaf), dict):
        node[leaf].setdefault("_schema", []).append(message)
    else:
        node.setdefault(leaf, []).append(message)


class PetitionerInSchema(Schema):
    """A petitioner (信访人); the first is the main petitioner."""

    name = fields.String(load_default="", validate=validate.Length(0, 64))
    id_number = fields.String(load_default=None, allow_none=True,
                              metadata={"description": "GB 11643 identity number (18, or legacy 15 digits)"})
    phone = fields.String(load_default=None, allow_none=True, metadata={"description": "mobile or landline"})
    address_code = fields.String(load_default=None, allow_none=True,
                                 validate=validate.Regexp(r"^\d{6}(\d{6})?$", error="must be a 6- or 12-digit region code"))
    address = fields.String(load_default="", validate=validate.Length(0, 200))

    @validates("id_number")
    def _id_number(self, value, **_):
        if value:
            try:
                normalize_id_number(value, today=clock.now().date())
            except IdentityError as exc:
                raise ValidationError(f"{exc.reason_en} ({exc.reason_zh})") from None

    @validates("phone")
    def _phone(self, value, **_):
        if value:
            try:
                normalize_phone(value)
            except IdentityError as exc:
                raise ValidationError(f"{exc.reason_en} ({exc.reason_zh})") from None

    @validates("address_code")
    def _address_code(self, value, **_):
        if value:
            _check_region(value)

    @post_load
    def _normalise(self, data, **_):
        if data.get("id_number"):
            data["id_number"] = normalize_id_number(data["id_number"], today=clock.now().date())
        if data.get("phone"):
            data["phone"] = normalize_phone(data["phone"])
        return data


#: A complete, valid registration: the request body example of the OpenAPI document (``/intake/docs`` fills
#: "Try it out" with it).  ``system`` must be the caller's API key's own system.
PETITION_EXAMPLE = {
    "system": "wancheng-xf", "county_no": "WC-2026-000123", "channel": "来访", "purpose": "求决",
    "petitioned_at": "2026-11-20T09:30:00+08:00", "registered_at": "2026-11-20T09:45:00+08:00", "people_count": 1,
    "title": "房屋征收补偿款未发放", "request_text": "东关街道旧城改造项目房屋已于2026年3月腾空交付，征收补偿款至今未发放，请求尽快兑现。",
    "facts": "2025年12月签订征收补偿协议，约定交房后30日内支付补偿款。", "category": "0301",
    "region_code": "411302001000", "complained_party": "宛城区房屋征收办公室",
    "petitioners": [{"name": "张三", "id_number": "41130219800101001X", "phone": "13800000000",
                     "address_code": "411302001000", "address": "宛城区东关街道某小区3号楼"}],
    "legal_litigation": False, "urgent": False, "anonymous": False, "confidential": False, "first_time": True,
}


class PetitionInSchema(Schema):
    """Registration of a petition (信访件登记)."""

    system = fields.String(required=True, validate=validate.Length(1, 64),
                           metadata={"description": "registering system id (登记系统)"})
    county_no = fields.String(load_default=None, allow_none=True, validate=validate.Length(1, 64),
                              metadata={"description": "the registering system's own number; unique per system"})
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS), metadata={"description": "信访形式"})
    purpose = fields.String(required=True, validate=validate.OneOf(list(PURPOSES)), metadata={"description": "信访目的"})
    petitioned_at = fields.AwareDateTime(required=True, metadata={"description": "when the petitioner came/wrote/called"})
    registered_at = fields.AwareDateTime(load_default=None, allow_none=True,
                                         metadata={"description": "登记时间 in the registering system; default now"})
    people_count = fields.Integer(load_default=1, strict=True, validate=validate.Range(1, 100_000),
                                  metadata={"description": "涉及人数"})
    title = fields.String(required=True, validate=validate.Length(1, 100))
    request_text = fields.String(required=True, validate=validate.Length(1, 5000), metadata={"description": "诉求"})
    facts = fields.String(load_default="", validate=validate.Length(0, 20_000), metadata={"description": "事实与理由"})
    category = fields.String(required=True, metadata={"description": "内容分类: a code (03, 0301) or a name"})
    region_code = fields.String(required=True, validate=validate.Regexp(
        r"^\d{6}(\d{6})?$", error="must be a 6-digit GB/T 2260 or 12-digit statistical region code"),
        metadata={"description": "问题属地"})
    complained_party = fields.String(load_default="", validate=validate.Length(0, 200),
                                     metadata={"description": "被反映人或单位"})
    petitioners = fields.List(fields.Nested(PetitionerInSchema), load_default=list, validate=validate.Length(0, 50))
    legal_litigation = fields.Boolean(load_default=False, metadata={"description": "涉法涉诉"})
    urgent = fields.Boolean(load_default=False, metadata={"description": "重大紧急"})
    anonymous = fields.Boolean(load_default=False, metadata={"description": "匿名"})
    confidential = fields.Boolean(load_default=False, metadata={"description": "保密"})
    first_time = fields.Boolean(load_default=True, metadata={"description": "初信初访"})

    @validates("category")
    def _category(self, value, **_):
        if categories().resolve(value) is None:
            raise ValidationError(f"unknown content category {value!r} (内容分类不存在)")

    @validates("region_code")
    def _region(self, value, **_):
        _check_region(value)

    @validates("petitioned_at")
    def _petitioned_at(self, value, **_):
        if value > clock.now() + CLOCK_SKEW:
            raise ValidationError("must not be in the future (信访时间不能晚于当前时间)")

    @validates("registered_at")
    def _registered_at(self, value, **_):
        if value is not None and value > clock.now() + CLOCK_SKEW:
            raise ValidationError("must not be in the future (登记时间不能晚于当前时间)")

    @validates_schema
    def _cross_fields(self, data, **_):
        errors: dict = {}
        petitioned, registered = data.get("petitioned_at"), data.get("registered_at")
        if petitioned and registered and petitioned > registered:
            _nest(errors, "registered_at", "must not be before petitioned_at (登记时间早于信访时间)")
        if "channel" in data and "petitioners" in data:
            for v in channel_violations(channel=data["channel"], anonymous=data.get("anonymous", False),
                                        petitioners=data["petitioners"]):
                _nest(errors, v.field, v.message)
        if errors:
            raise ValidationError(errors)

    @post_load
    def _resolve(self, data, **_):
        data["category"] = categories().resolve(data["category"])
        return data


class PetitionerOutSchema(Schema):
    name = fields.String()
    id_number = fields.String(allow_none=True, metadata={"description": "masked unless revealed"})
    phone = fields.String(allow_none=True, metadata={"description": "masked unless revealed"})
    address_code = fields.String(allow_none=True)
    address = fields.String()
    main = fields.Boolean()


class DetectionSchema(Schema):
    repeat_of = fields.String(allow_none=True, metadata={"description": "重复信访: the earlier petition's id"})
    repeat_of_display_no = fields.String(allow_none=True)
    repeat_score = fields.Float(allow_none=True)
    repeat_reasons = fields.List(fields.String())
    reflow = fields.Boolean(metadata={"description": "回流: the earlier case was closed or resolved"})
    cross_level = fields.Boolean(metadata={"description": "越级: registered above the competent level while open below"})
    no_longer_accepted = fields.Boolean(metadata={"description": "不再受理 (proposal; 复核 complete)"})


class PetitionOutSchema(Schema):
    id = fields.String()
    display_no = fields.String()
    system = fields.String()
    county_no = fields.String(allow_none=True)
    channel = fields.String()
    purpose = fields.String()
    statutory_type = fields.String()
    petitioned_at = fields.AwareDateTime()
    registered_at = fields.AwareDateTime()
    received_at = fields.AwareDateTime()
    registrar = fields.String()
    people_count = fields.Integer()
    group_visit = fields.Boolean()
    title = fields.String()
    request_text = fields.String()
    facts = fields.String()
    category_code = fields.String()
    category_name = fields.String()
    region_code = fields.String()
    complained_party = fields.String()
    legal_litigation = fields.Boolean()
    urgent = fields.Boolean()
    anonymous = fields.Boolean()
    confidential = fields.Boolean()
    first_time = fields.Boolean()
    petitioners = fields.List(fields.Nested(PetitionerOutSchema))
    detection = fields.Nested(DetectionSchema)
    case_status = fields.String()
    existing = fields.Boolean(metadata={"description": "true: this (system, county_no) was registered before; "
                                                       "the existing petition is returned, nothing new created"})


class PetitionQuerySchema(Schema):
    region = fields.String(validate=validate.Regexp(r"^\d{6}(\d{6})?$"), metadata={"description": "region subtree"})
    category = fields.String(metadata={"description": "category code prefix, e.g. 03"})
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    flag = fields.List(fields.String(validate=validate.OneOf(
        ["repeat", "reflow", "cross_level", "no_longer_accepted", "legal_litigation", "urgent", "anonymous",
         "confidential", "group_visit"])), metadata={"description": "only petitions with all these flags"})
    registered_from = fields.AwareDateTime()
    registered_to = fields.AwareDateTime()


class RevealQuerySchema(Schema):
    reveal = fields.String(validate=validate.OneOf(["pii"]),
                           metadata={"description": "pii: unmasked identity numbers and phones (audited)"})


class CountyNoQuerySchema(Schema):
    system = fields.String(required=True)
    county_no = fields.String(required=True)


class ChangeSchema(Schema):
    at = fields.AwareDateTime()
    actor = fields.String()
    action = fields.String()
    changes = fields.Dict()
