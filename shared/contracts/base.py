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

import dataclasses
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load

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


@functools.lru_cache(maxsize=None)
def _schema(cls: type[Schema]) -> Schema:
    """One instance per schema class: building schemas is costly, using them is stateless."""
    return cls()


def dump_envelope(envelope: Envelope) -> dict:
    """Envelope -> JSON-ready dict (payload validated by its schema)."""
    data = dataclasses.asdict(envelope)
    data["payload"] = _schema(PAYLOADS[(envelope.type, envelope.version)]).dump(envelope.payload)
    return _schema(EnvelopeSchema).dump(data)


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
