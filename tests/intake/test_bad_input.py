"""Bad input: every failing field is named with a reason, and nothing is stored."""
from __future__ import annotations

import pytest

from intake_svc.models import Outbox, Petitioner
from tests.intake.conftest import ID_MAIN, full_body


def one(**person):
    return [{"name": "张三", **person}]


CASES = [
    # (what, overrides, the field that must be reported, a word of the reason)
    ("check character", {"petitioners": one(id_number="110105194912310021")}, "petitioners.0.id_number", "check"),
    ("impossible birth date", {"petitioners": one(id_number="110105194902300021")}, "petitioners.0.id_number", "date"),
    ("future birth date", {"petitioners": one(id_number="110105209901010011")}, "petitioners.0.id_number", ""),
    ("identity number garbage", {"petitioners": one(id_number="12345")}, "petitioners.0.id_number", ""),
    ("mobile too short", {"petitioners": one(id_number=ID_MAIN, phone="1381234567")}, "petitioners.0.phone", ""),
    ("landline garbage", {"petitioners": one(id_number=ID_MAIN, phone="0371-12")}, "petitioners.0.phone", ""),
    ("unknown region", {"region_code": "411399"}, "region_code", "unknown region"),
    ("malformed region", {"region_code": "4113"}, "region_code", "6-digit"),
    ("unknown address code", {"petitioners": one(id_number=ID_MAIN, address_code="419999")},
     "petitioners.0.address_code", "unknown region"),
    ("unknown category", {"category": "星际旅行"}, "category", "unknown content category"),
    ("unknown channel", {"channel": "飞鸽传书"}, "channel", ""),
    ("unknown purpose", {"purpose": "闲聊"}, "purpose", ""),
    ("petitioned in the future", {"petitioned_at": "2099-01-01T00:00:00+08:00"}, "petitioned_at", "future"),
    ("registered in the future", {"registered_at": "2099-01-01T00:00:00+08:00"}, "registered_at", "future"),
    ("registered before petitioned", {"petitioned_at": "2026-11-20T10:00:00+08:00",
                                      "registered_at": "2026-11-19T10:00:00+08:00"}, "registered_at", "before"),
    ("naive time", {"petitioned_at": "2026-11-20T10:00:00"}, "petitioned_at", ""),
    ("title too long", {"title": "长" * 101}, "title", ""),
    ("empty request", {"request_text": ""}, "request_text", ""),
    ("people count as text", {"people_count": "5"}, "people_count", ""),
    ("people count zero", {"people_count": 0}, "people_count", ""),
    ("anonymous visit", {"anonymous": True, "petitioners": []}, "anonymous", "来访不能匿名"),
    ("anonymous letter with an id number", {"channel": "来信", "anonymous": True,
                                            "petitioners": one(id_number=ID_MAIN)}, "petitioners.0.id_number", "匿名"),
    ("visit without identity number", {"petitioners": one(phone="13812345678")}, "petitioners.0.id_number", "来访"),
    ("call without phone", {"channel": "来电", "petitioners": one(id_number=ID_MAIN)}, "petitioners.0.phone", "来电"),
    ("no petitioner, not anonymous", {"channel": "来信", "petitioners": []}, "petitioners", "name"),
]


def _errors_at(errors: dict, dotted: str):
    node = errors
    for part in dotted.split("."):
        assert isinstance(node, dict), (dotted, errors)
        node = node.get(part) if part in node else node.get(int(part)) if part.isdigit() else None
        assert node is not None, (dotted, errors)
    return node


@pytest.mark.parametrize("what,overrides,field,reason", CASES, ids=[c[0] for c in CASES])
def test_bad_field_is_named_and_nothing_is_stored(intake, what, overrides, field, reason):
    # When a registration with one bad field is sent
    r = intake.post(full_body(**overrides))
    # Then 422 names that field with a reason
    assert r.status_code == 422, (what, r.json)
    messages = _errors_at(r.json["errors"]["json"], field)
    text = " ".join(messages if isinstance(messages, list) else [str(messages)])
    assert reason.lower() in text.lower(), (what, text)
    # And nothing is stored
    assert intake.count() == 0 and intake.count(Petitioner) == 0 and intake.count(Outbox) == 0


def test_every_failing_field_is_reported_at_once(intake):
    r = intake.post(full_body(region_code="411399", category="星际旅行", title="",
                              petitioners=one(id_number="110105194912310021", phone="12")))
    errors = r.json["errors"]["json"]
    assert {"region_code", "category", "title", "petitioners"} <= set(errors)
    assert set(errors["petitioners"]["0"] if "0" in errors["petitioners"] else errors["petitioners"][0]) == {
        "id_number", "phone"}


def test_an_anonymous_letter_needs_no_petitioner(intake):
    r = intake.post(full_body(channel="来信", anonymous=True, petitioners=[]))
    assert r.status_code == 201 and r.json["anonymous"] is True


@pytest.mark.parametrize("raw,ctype,status", [
    (b"{", "application/json", 400),
    (b"\xff\xfe", "application/json", 400),
    (b'"just a string"', "application/json", 422),
    (b"<xml/>", "application/xml", 422),
])
def test_malformed_bodies_are_4xx_never_5xx(intake, raw, ctype, status):
    from tests.helpers import auth

    r = intake.client.post("/intake/api/v1/petitions", data=raw, content_type=ctype,
                           headers=auth(intake.settings, role="registrar"))
    assert r.status_code == status, r.data
    assert intake.count() == 0
