"""shared.jsoncodec: orjson's speed, the standard library's rules (what is accepted, what is refused)."""
from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import date, datetime, timezone
from decimal import Decimal

import dramatiq
import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from shared import jsoncodec
from shared.jsoncodec import FastJSONProvider, MessageEncoder

VALUES = [
    {"标题": "拖欠工资", "n": 3, "x": 1.5, "ok": True, "none": None, "list": [1, "二", {"三": 3}]},
    {"big": 2 ** 70, "neg": -(2 ** 65)},  # beyond orjson's 64 bits: the standard library writes them
    {1: "one", None: "none"},  # non-string keys: json converts them
    "\u4fe1\u8bbf \"quoted\" \\ \n\t",
    [0.1, 1e16, -0.0],
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_writes_what_json_reads_back_as_json_would(value):
    text = jsoncodec.dumps(value)
    assert json.loads(text) == json.loads(json.dumps(value))
    assert jsoncodec.dumps_bytes(value) == text.encode()


def test_non_ascii_is_written_as_it_is():
    assert jsoncodec.dumps({"信访": "来访"}) == '{"信访":"来访"}'


def test_what_json_refuses_is_still_refused():
    with pytest.raises(TypeError):
        jsoncodec.dumps({"at": datetime(2026, 3, 4, tzinfo=timezone.utc)})  # no default: json raises too
    with pytest.raises(TypeError):
        jsoncodec.dumps({"s": {1, 2}})
    # with a default, the default decides, for the types json does not know (datetime included)
    assert jsoncodec.dumps({"at": date(2026, 3, 4)}, default=str) == '{"at":"2026-03-04"}'


def test_loads_accepts_what_json_accepts_and_refuses_what_it_refuses():
    assert jsoncodec.loads('{"a": [1, 2.5, "信"]}') == {"a": [1, 2.5, "信"]}
    assert jsoncodec.loads(b'{"big": 123456789012345678901234567890}') == {"big": 123456789012345678901234567890}
    mixed = jsoncodec.loads('{"score": 0.5, "big": 1180591620717411303424, "ids": [18446744073709551616]}')
    assert mixed == {"score": 0.5, "big": 2 ** 70, "ids": [2 ** 64]} and type(mixed["big"]) is int
    assert jsoncodec.loads('"\\ud800"') == "\ud800"  # a lone surrogate: orjson refuses, json takes it
    assert jsoncodec.loads("NaN") != jsoncodec.loads("NaN")  # json's extension, kept
    for bad in ('{"a": ', "{'a': 1}", "", "[1,]"):
        with pytest.raises(json.JSONDecodeError):
            jsoncodec.loads(bad)


@dataclasses.dataclass
class _Point:
    x: int
    at: date


def test_flask_provider_writes_flasks_types_as_flask_does():
    app = Flask("t")
    stock, fast = DefaultJSONProvider(app), FastJSONProvider(app)
    value = {"when": datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc), "day": date(2026, 3, 4),
             "id": uuid.UUID(int=7), "amount": Decimal("1.10"), "point": _Point(1, date(2026, 1, 2)), "名": "张三"}
    assert json.loads(fast.dumps(value)) == json.loads(stock.dumps(value))
    assert fast.loads('{"a": 1}') == {"a": 1}
    assert '"名":"张三"' in fast.dumps(value)
    with pytest.raises(TypeError):
        fast.dumps({"s": {1}})


def test_flask_provider_response_and_request_bodies():
    app = Flask("t")
    app.json = FastJSONProvider(app)

    @app.post("/echo")
    def echo():
        from flask import jsonify, request
        return jsonify(got=request.get_json(), at=date(2026, 3, 4))

    response = app.test_client().post("/echo", data='{"标题": "欠薪", "n": 1}', content_type="application/json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_data(as_text=True).endswith("\n")
    assert response.get_json() == {"got": {"标题": "欠薪", "n": 1}, "at": "Wed, 04 Mar 2026 00:00:00 GMT"}
    bad = app.test_client().post("/echo", data='{"标题": ', content_type="application/json")
    assert bad.status_code == 400


def test_flask_provider_keeps_flasks_own_options():
    app = Flask("t")
    fast = FastJSONProvider(app)
    assert fast.dumps({"b": 1, "a": 2}, indent=2) == '{\n  "b": 1,\n  "a": 2\n}'
    app.debug = True  # debug mode: indented responses, as Flask's
    with app.app_context():
        assert fast.response({"a": 1}).get_data(as_text=True) == '{\n  "a": 1\n}\n'


def test_messages_read_by_either_encoder():
    message = dramatiq.Message(queue_name="q", actor_name="a", args=({"标题": "欠薪", "n": 2 ** 70},), kwargs={},
                               options={"producer": "intake"}, message_id="m1")
    ours, theirs = MessageEncoder(), dramatiq.JSONEncoder()
    data = message.asdict()
    assert theirs.decode(ours.encode(data)) == theirs.decode(theirs.encode(data))
    assert ours.decode(theirs.encode(data)) == theirs.decode(theirs.encode(data))
    assert ours.decode(ours.encode(data))["args"][0]["n"] == 2 ** 70  # an int, exact
    with pytest.raises(dramatiq.DecodeError):
        ours.decode(b"\xff not json")
    import shared.broker  # noqa: F401  (installs it)

    assert isinstance(dramatiq.get_encoder(), MessageEncoder)
