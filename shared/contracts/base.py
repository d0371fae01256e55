"""Message contracts: the envelope and the registry of payload types (消息契约).

Every message is an ``Envelope`` (type, version, id, occurred_at, producer,
correlation_id, payload).  Each payload type is a frozen dataclass with a
marshmallow schema, registered under ``(type, version)``.  A producer never
imports a consumer: ``ROUTES`` says which queue and actor name receive each
message type, and the outbox relay enqueues by those names.

Changing a payload incompatibly means a new version; consumers keep accepting
the old one until every producer has moved.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, missing, post_load
from marshmallow.decorators import POST_DUMP, PRE_DUMP


class PayloadSchema(Schema):
    """Builds the payload dataclass on load; unknown keys are ignored (forward compatible)."""

    class Meta:
        unknown = EXCLUDE

    __payload__: ClassVar[type]

    @post_load
    def _make(self, data: dict, **_: Any):
        return self.__payload__(**data)


#: (type, version) -> payload schema class; filled by ``register``.
PAYLOADS: dict[tuple[str, int], type["PayloadSchema"]] = {}

#: message type -> [(queue_name, actor_name)]: who consumes what.  Queue = the consumer service.
ROUTES: dict[str, list[tuple[str, str]]] = {}


def register(message_type: str, version: int, schema: type["PayloadSchema"], *,
             consumers: list[tuple[str, str]]) -> None:
    """Declare a payload contract and the (queue, actor name) pairs that consume it."""
    key = (message_type, version)
    if key in PAYLOADS and PAYLOADS[key] is not schema:
        raise ValueError(f"contract {key} declared twice")
    PAYLOADS[key] = schema
    existing = ROUTES.setdefault(message_type, [])
    for consumer in consumers:
        if consumer not in existing:
            existing.append(consumer)


#: payload class -> (type, version) found by ``_type_of`` (checked against ``PAYLOADS`` on each use).
_KEY_OF_CLASS: dict[type, tuple[str, int]] = {}


def _type_of(payload: Any) -> tuple[str, int]:
    key = _KEY_OF_CLASS.get(type(payload))
    if key is not None and key in PAYLOADS and isinstance(payload, PAYLOADS[key].__payload__):
        return key
    for key, schema in PAYLOADS.items():
        if isinstance(payload, schema.__payload__):
            _KEY_OF_CLASS[type(payload)] = key
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


@functools.lru_cache(maxsize=None)
def _schema(cls: type[Schema]) -> Schema:
    """One instance per schema class: building schemas is costly, using them is stateless."""
    return cls()


def _plan_kind(field: fields.Field) -> tuple[str, bool]:
    """How ``_dumper`` serialises a value of ``field``: a shortcut equal to ``field._serialize`` for the
    common exact types (see ``_dumper``), and whether ``None`` dumps as ``None`` for that field class."""
    if type(field).get_value is not fields.Field.get_value or not field._CHECK_ATTRIBUTE:
        return "field", False
    method = type(field)._serialize
    none_safe = method in _NONE_SAFE
    if method is fields.Field._serialize:
        return "identity", none_safe
    if method is fields.String._serialize:
        return "str", none_safe
    if method is fields.Mapping._serialize and field.key_field is None and field.value_field is None \
            and field.mapping_type is dict:
        return "dict", none_safe
    if method is fields.DateTime._serialize and field.format in ("iso", "iso8601"):
        return "datetime", none_safe
    if method is fields.Number._serialize and field.num_type is int and not field.as_string:
        return "int", none_safe
    return "field", none_safe


_NONE_SAFE = {fields.Field._serialize, fields.String._serialize, fields.Mapping._serialize,
              fields.DateTime._serialize, fields.Number._serialize, fields.List._serialize,
              fields.Nested._serialize}


@functools.lru_cache(maxsize=None)
def _dumper(cls: type[Schema]) -> Callable[[Any], dict]:
    """``_schema(cls).dump`` for one object (same keys, order and values), without marshmallow's per-field
    machinery for the values whose dump is known: ``None`` (for the field classes that dump it as
    ``None``), an exact ``str`` for a String, an exact ``dict`` for a plain Dict (shallow copy), a
    ``bool``/anything for a field that dumps values as they are (Boolean), an exact ``datetime`` for an ISO
    DateTime (``isoformat()``), an exact ``int`` for an Integer.  Any other value (and a missing attribute,
    a dotted ``attribute``, a list, a nested schema) goes through ``field.serialize`` as ``Schema.dump``
    does; a schema with dump hooks or a custom accessor uses ``Schema.dump`` itself.  Dump never validates."""
    schema = _schema(cls)
    if (schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP] or schema.dict_class is not dict
            or type(schema).get_attribute is not Schema.get_attribute):
        return schema.dump
    plan = []
    for name, field in schema.dump_fields.items():
        attribute = field.attribute if field.attribute is not None else name
        kind, none_safe = _plan_kind(field) if "." not in attribute else ("field", False)
        plan.append((name, field.data_key if field.data_key is not None else name, attribute, field, kind,
                     none_safe))
    get_attribute = schema.get_attribute
    last_instant: list = [(None, "")]  # (the last datetime formatted, its text)

    def dump(obj: Any) -> dict:
        if type(obj) is dict:  # all the keys are there (the envelope below): get_value reads obj[key]
            get = obj.get
        elif hasattr(obj, "__getitem__"):
            get = functools.partial(get_attribute, obj)
        else:  # a dataclass: get_value reads the attribute
            get = functools.partial(getattr, obj)
        out = {}
        for name, key, attribute, field, kind, none_safe in plan:
            value = get(attribute, missing)
            if value is None and none_safe:
                out[key] = None
                continue
            vtype = type(value)
            if kind == "str" and vtype is str or kind == "identity" and value is not missing:
                out[key] = value
            elif kind == "dict" and vtype is dict:
                out[key] = dict(value)
            elif kind == "datetime" and vtype is datetime:
                seen, text = last_instant[0]  # the messages of a batch share their instants: format once
                if seen is not value:
                    text = value.isoformat()
                    last_instant[0] = (value, text)  # one atomic store: threads never see half a pair
                out[key] = text
            elif kind == "int" and vtype is int:
                out[key] = value
            else:
                value = field.serialize(name, obj, accessor=get_attribute)
                if value is not missing:
                    out[key] = value
        return out

    return dump


def dump_envelope(envelope: Envelope) -> dict:
    """Envelope -> JSON-ready dict: exactly ``EnvelopeSchema().dump`` of the envelope whose payload is
    ``schema.dump(payload)`` of its registered schema (the wire format), built field by field (``_dumper``)
    rather than through ``dataclasses.asdict`` and two full schema passes — several times faster, which
    matters for a sweep that writes thousands of messages.  Dump does not validate (load does)."""
    payload = _dumper(PAYLOADS[(envelope.type, envelope.version)])(envelope.payload)
    return _dumper(EnvelopeSchema)({
        "type": envelope.type, "version": envelope.version, "id": envelope.id,
        "occurred_at": envelope.occurred_at, "producer": envelope.producer,
        "correlation_id": envelope.correlation_id, "payload": payload})


def load_envelope(data: dict) -> Envelope:
    """JSON dict -> Envelope with a typed payload; ValidationError on a bad message."""
    raw = _schema(EnvelopeSchema).load(data)
    key = (raw["type"], raw["version"])
    if key not in PAYLOADS:
        raise ValidationError({"type": [f"unknown message type/version {key}"]})
    raw["payload"] = _schema(PAYLOADS[key]).load(raw["payload"])
    return Envelope(**raw)


def envelope_for(payload: Any, *, id: str, occurred_at: datetime, producer: str, correlation_id: str) -> Envelope:
    mtype, version = _type_of(payload)
    return Envelope(type=mtype, version=version, id=id, occurred_at=occurred_at,
                    producer=producer, correlation_id=correlation_id, payload=payload)
