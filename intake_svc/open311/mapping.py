"""Open311 GeoReport v2 <-> petitions: services, attributes, the POST form and the request view.

Pure functions over the category and region tables; the views in ``api`` call them.
"""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from werkzeug.datastructures import MultiDict

from intake_svc.domain.rules import CHANNELS, PURPOSES
from intake_svc.models import Petition
from intake_svc.schemas import categories, regions
from shared import clock
from shared.regions import subtree_prefix

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this facade last changed (discovery ``changeset``).
CHANGESET = "2026-11-22T00:00:00Z"
DEFAULT_CHANNEL = "网上信访"
TITLE_FROM_DESCRIPTION = 30
#: Case statuses (办理状态) shown as Open311 ``closed``; every other status is ``open``.
CLOSED_STATUSES = ("已办结", "已存档", "终结", "复核已完成", "不再受理", "不予受理")
#: status_notes before assign_svc has reported any case status.
REGISTERED_NOTE = "已登记"

_BOOL_VALUES = [{"key": "true", "name": "匿名 (anonymous)"}, {"key": "false", "name": "实名 (named)"}]

#: The attributes of every service definition, in order (code, datatype, required, description, values).
ATTRIBUTES: tuple[tuple[str, str, bool, str, list[dict] | None], ...] = (
    ("region_code", "string", True,
     "问题属地: 6- or 12-digit region code where the matter arose, inside jurisdiction_id "
     "(default: jurisdiction_id when it is a county or below)", None),
    ("purpose", "singlevaluelist", True, "信访目的 (purpose)", [{"key": p, "name": p} for p in PURPOSES]),
    ("channel", "singlevaluelist", False, f"信访形式 (channel), default {DEFAULT_CHANNEL}",
     [{"key": c, "name": c} for c in CHANNELS]),
    ("title", "string", False, f"标题 (title), default: the first {TITLE_FROM_DESCRIPTION} characters of description",
     None),
    ("id_number", "string", False, "信访人身份证号 (GB 11643); required for 网上信访 and 来访 unless anonymous", None),
    ("anonymous", "singlevaluelist", False, "匿名信访 (anonymous), default false", _BOOL_VALUES),
    ("people_count", "number", False, "涉及人数 (people involved), default 1", None),
    ("county_no", "string", False, "your own case number; a resend with the same number returns the same request",
     None),
    ("petitioned_at", "datetime", False, "信访时间 (when the petitioner came, wrote or called), w3 datetime; "
     "default now", None),
)
_ATTRIBUTE_TYPES = {code: datatype for code, datatype, *_ in ATTRIBUTES}
_ATTRIBUTE_VALUES = {code: {v["key"] for v in values} for code, _, _, _, values in ATTRIBUTES if values}
_ATTRIBUTE_KEY = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")

#: Where a PetitionInSchema field came from in the Open311 form, for error descriptions.
SOURCE = {"request_text": "description", "category": "service_code", "system": "api_key",
          "petitioners": "first_name/last_name", "petitioners.0.name": "first_name/last_name",
          "petitioners.0.phone": "phone", "petitioners.0.address": "address_string",
          "petitioners.0.id_number": "attribute[id_number]",
          "petitioners.0": "phone/address_string/attribute[id_number]",
          **{code: f"attribute[{code}]" for code in _ATTRIBUTE_TYPES}}


def services() -> list[dict]:
    """Every content category (一级 and 二级) as an Open311 service."""
    newer: dict[str, list[str]] = {}
    for c in categories().newer_names():
        newer.setdefault(c.code, []).append(c.name)
    return [{"service_code": c.code, "service_name": c.name, "description": f"{c.label} 类信访事项",
             "metadata": True, "type": "batch", "keywords": ",".join(newer.get(c.code, [])) if c.level == 1 else "",
             "group": c.classic_name} for c in categories().all()]


def definition(service_code: str) -> dict | None:
    if categories().get(service_code) is None:
        return None
    return {"service_code": service_code, "attributes": [
        {"variable": True, "code": code, "datatype": datatype, "required": required,
         "datatype_description": _datatype_description(datatype), "order": order, "description": description,
         **({"values": values} if values else {})}
        for order, (code, datatype, required, description, values) in enumerate(ATTRIBUTES, start=1)]}


def _datatype_description(datatype: str) -> str | None:
    return {"number": "an integer", "datetime": "w3 datetime with a timezone, e.g. 2026-11-20T09:30:00+08:00",
            "singlevaluelist": "one of the keys in values"}.get(datatype)


def attributes_of(form: MultiDict) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``attribute[code]=value`` pairs of the form, and errors for unknown codes or values."""
    values: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for key in form:
        match = _ATTRIBUTE_KEY.match(key)
        if not match:
            continue
        code = match.group(1)
        if code not in _ATTRIBUTE_TYPES:
            errors.setdefault(key, []).append("unknown attribute (see the service definition)")
            continue
        given = [v.strip() for v in form.getlist(key)]
        if len(given) != 1:
            errors.setdefault(f"attribute[{code}]", []).append("takes exactly one value")
            continue
        value = given[0]
        if code in _ATTRIBUTE_VALUES and value not in _ATTRIBUTE_VALUES[code]:
            errors.setdefault(f"attribute[{code}]", []).append(
                f"must be one of {', '.join(sorted(_ATTRIBUTE_VALUES[code]))}")
        elif _ATTRIBUTE_TYPES[code] == "number" and not re.fullmatch(r"\d{1,9}", value):
            errors.setdefault(f"attribute[{code}]", []).append("must be a whole number")
        elif value:
            values[code] = value
    return values, errors


def petition_data(form: MultiDict, *, system: str, jurisdiction_id: str) -> tuple[dict, dict[str, list[str]]]:
    """The PetitionInSchema input for an Open311 POST, and the errors found before the schema runs."""
    attrs, errors = attributes_of(form)
    text = (form.get("description") or "").strip()
    code = (form.get("service_code") or "").strip()
    if not code:
        errors.setdefault("service_code", []).append("required")
    elif categories().get(code) is None:
        errors.setdefault("service_code", []).append(f"{code} not found (see services)")
    data: dict = {"system": system, "channel": attrs.get("channel", DEFAULT_CHANNEL), "category": code or "-",
                  "petitioned_at": attrs.get("petitioned_at") or clock.now().isoformat()}
    if text:
        data["request_text"] = text
    # without a description the request fails on it; "-" keeps a second, derived error off the list
    data["title"] = attrs.get("title") or text[:TITLE_FROM_DESCRIPTION] or "-"
    for field in ("purpose", "county_no", "region_code"):
        if field in attrs:
            data[field] = attrs[field]
    if "region_code" not in data:
        if len(subtree_prefix(jurisdiction_id)) >= 6:
            data["region_code"] = jurisdiction_id
        else:
            errors.setdefault("attribute[region_code]", []).append(
                "required when jurisdiction_id is above county level (问题属地)")
            data["region_code"] = jurisdiction_id
    if "people_count" in attrs:
        data["people_count"] = int(attrs["people_count"])
    data["anonymous"] = attrs.get("anonymous") == "true"
    person = {"name": ((form.get("last_name") or "").strip() + (form.get("first_name") or "").strip()),
              "phone": (form.get("phone") or "").strip() or None, "id_number": attrs.get("id_number"),
              "address": (form.get("address_string") or "").strip()}
    data["petitioners"] = [person] if any(person.values()) else []
    return data, errors


def schema_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """Flatten marshmallow's nested messages to ``{open311 parameter: [reasons]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            for field, reasons in schema_errors(value, name).items():
                out.setdefault(field, []).extend(reasons)
        return out
    reasons = messages if isinstance(messages, list) else [messages]
    out[SOURCE.get(prefix, prefix)] = [str(r) for r in reasons]
    return out


def is_closed(case_status: str) -> bool:
    return case_status in CLOSED_STATUSES


def w3(value: datetime | None, tz: str) -> str | None:
    return value.astimezone(ZoneInfo(tz)).replace(microsecond=0).isoformat() if value is not None else None


def request_view(petition: Petition, tz: str) -> dict:
    """A petition as an Open311 service request; no personal data of any petitioner."""
    return {
        "service_request_id": petition.display_no,
        "status": "closed" if is_closed(petition.case_status) else "open",
        "status_notes": petition.case_status or REGISTERED_NOTE,
        "service_name": petition.category_name,
        "service_code": petition.category_code,
        "description": petition.request_text,
        "agency_responsible": None,
        "service_notice": None,
        "requested_datetime": w3(petition.registered_at, tz),
        "updated_datetime": w3(petition.case_updated_at or petition.registered_at, tz),
        "expected_datetime": None,
        "address": regions().full_name(petition.region_code) or petition.region_code,
        "address_id": None,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }
