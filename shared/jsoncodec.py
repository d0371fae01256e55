"""JSON through orjson where the services spend time on it, with the standard library's output as the rule.

Every registration is JSON four times over: the request body parsed, the response written, the event's
envelope written into the outbox, and that envelope read back and written again into the broker's message.
The standard library's encoder and decoder were about a tenth of a registration's CPU (``bench/intake``);
orjson does the same work in native code several times faster.

What stays exactly as before: what is accepted and what is refused.  orjson is stricter than ``json`` in a
few places (integers beyond 64 bits, non-string keys, lone surrogates in input); each function here falls
back to the standard library when orjson refuses (or, reading, would turn a big integer into a float), so
a value ``json`` took is still taken and one it refused (a ``datetime`` where no ``default`` converts it)
still raises ``TypeError``.  The text differs only in form:
non-ASCII characters are written as they are (as the services already asked of ``json``), floats in their
shortest form either way.
"""
from __future__ import annotations

import json
from typing import Any, Callable

import dramatiq
import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

#: Datetimes, dates and times and dataclasses go to ``default`` as they do with ``json`` (orjson would
#: otherwise write them itself, in formats that differ from Flask's); string subclasses (``Markup``) and
#: enums are written as ``json`` writes them.
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps_bytes(value: Any, *, default: Callable[[Any], Any] | None = None) -> bytes:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default)`` as UTF-8."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a non-string key, or really refused
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=default).encode()


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """``dumps_bytes`` as text (SQLAlchemy's ``json_serializer``, the outbox's bodies)."""
    return dumps_bytes(value, default=default).decode()


def _has_float(value: Any) -> bool:
    """Whether a parsed document holds a float anywhere (a walk costs less than a regex over its text)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float:
            return True
    return False


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads(data)``; ``json.JSONDecodeError`` (orjson's is a subclass) for what ``json`` refuses.
    orjson reads an integer beyond 64 bits as a float: a document with a float in it is read again by
    ``json``, which keeps such integers exact (floats are rare in these documents)."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # what only orjson refuses (a lone surrogate, NaN) or the real error
    return json.loads(data) if _has_float(value) else value


class FastJSONProvider(DefaultJSONProvider):
    """Flask's JSON (request bodies, ``jsonify``, flask-smorest's responses) through ``dumps_bytes`` /
    ``loads``.  Keys keep their order (the schemas' field order) instead of being sorted; non-ASCII is written
    as it is.  A call with ``json.dumps`` options of its own (``indent`` in debug mode) goes to Flask's."""

    ensure_ascii = False
    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs.keys() - {"default", "separators"}:
            return super().dumps(obj, **kwargs)
        return dumps(obj, default=kwargs.get("default", self.default))

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s) if not kwargs else super().loads(s, **kwargs)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        if (self.compact is None and self._app.debug) or self.compact is False:
            return super().response(obj)
        return self._app.response_class(dumps_bytes(obj, default=self.default) + b"\n", mimetype=self.mimetype)


class MessageEncoder(dramatiq.JSONEncoder):
    """Dramatiq's message encoding (the broker's wire format is JSON either way; a message written by one
    encoder is read by the other)."""

    def encode(self, data: dict) -> bytes:
        return dumps_bytes(data)

    def decode(self, data: bytes) -> dict:
        try:
            return loads(data)
        except ValueError:  # not JSON, or not UTF-8: dramatiq's own DecodeError for it
            return super().decode(data)
