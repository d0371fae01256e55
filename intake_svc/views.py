"""Building API representations of petitions (masked personal data, detection, case status)."""
from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, missing

from intake_svc.models import Petition
from intake_svc.pii import PiiVault, petitioner_view


#: The petition's column names, in table order (computed once).
COLUMNS = tuple(column.key for column in Petition.__table__.columns)


def petition_view(petition: Petition, vault: PiiVault, *, reveal: bool = False, existing: bool = False,
                  plain: Sequence[tuple[str | None, str | None]] = ()) -> dict:
    """``plain``: the petitioners' (identity number, phone) in clear when the caller has them (a
    registration just stored them), so they are masked without decrypting the stored values."""
    out = {key: getattr(petition, key) for key in COLUMNS}
    people = petition.petitioners
    out["petitioners"] = [petitioner_view(vault, p, reveal=reveal,
                                          plain=plain[i] if len(plain) == len(people) else None)
                          for i, p in enumerate(people)]
    out["detection"] = {"repeat_of": petition.repeat_of, "repeat_score": petition.repeat_score,
                        "repeat_reasons": petition.repeat_reasons or [], "reflow": petition.reflow,
                        "cross_level": petition.cross_level, "no_longer_accepted": petition.no_longer_accepted,
                        "repeat_of_display_no": petition.repeat_of_display_no}
    out["existing"] = existing
    return out


def _plan(schema: Schema) -> list[tuple[str, str, Any, Any]] | None:
    """(name, kind, field, nested plan) per dump field of ``schema``; None when the schema has hooks, attributes
    or data keys (then only ``Schema.dump`` is exact)."""
    if any(schema._hooks.values()) or type(schema).get_attribute is not Schema.get_attribute:
        return None
    plan = []
    for name, field in schema.dump_fields.items():
        if field.attribute is not None or field.data_key is not None:
            return None
        kind, nested = "field", None
        if type(field) is fields.String:
            kind = "str"
        elif type(field) is fields.Boolean:
            kind = "identity"  # Field._serialize: the value as it is
        elif type(field) is fields.Integer and not field.as_string:
            kind = "int"
        elif type(field) is fields.Float and not field.as_string:
            kind = "float"
        elif type(field) in (fields.DateTime, fields.AwareDateTime) and (field.format or "iso") in ("iso", "iso8601"):
            kind = "datetime"
        elif type(field) is fields.List and type(field.inner) is fields.String:
            kind = "str_list"
        elif type(field) is fields.Nested and not field.many and not field.only and not field.exclude:
            kind, nested = "nested", _plan(field.schema)
        elif (type(field) is fields.List and type(field.inner) is fields.Nested and not field.inner.many
              and not field.inner.only and not field.inner.exclude):
            kind, nested = "nested_list", _plan(field.inner.schema)
        if kind.startswith("nested") and nested is None:
            kind = "field"
        plan.append((name, kind, field, nested))
    return plan


def _dump(plan: list, obj: dict) -> dict:
    out = {}
    for name, kind, field, nested in plan:
        value = obj.get(name, missing)
        if value is missing:
            continue  # Schema.dump leaves a missing key out
        vtype = type(value)
        if value is None and kind != "field":
            out[name] = None
        elif kind == "identity" or kind == "str" and vtype is str or kind == "int" and vtype is int \
                or kind == "float" and vtype is float:
            out[name] = value
        elif kind == "datetime" and vtype is datetime:
            out[name] = value.isoformat()
        elif kind == "str_list" and vtype is list and all(type(x) is str for x in value):
            out[name] = list(value)
        elif kind == "nested" and vtype is dict:
            out[name] = _dump(nested, value)
        elif kind == "nested_list" and vtype is list and all(type(x) is dict for x in value):
            out[name] = [_dump(nested, x) for x in value]
        else:
            out[name] = field.serialize(name, obj)
    return out


def fast_dumper(schema: Schema) -> Callable[[dict], dict]:
    """``schema.dump`` of a dict (a view built by ``petition_view``): the same keys, order and values, with
    the values whose dump is known (None, str, bool, int, float, ISO datetime, lists of str, nested dicts)
    taken as they are and anything else through ``field.serialize``, as ``Schema.dump`` does; without
    marshmallow's per-field machinery (a registration's response has some 40 fields).  Dump never
    validates.  A schema with hooks, attributes or data keys is dumped by ``schema.dump`` itself."""
    plan = _plan(schema)
    if plan is None:
        return schema.dump
    return functools.partial(_dump, plan)
