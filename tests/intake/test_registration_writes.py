"""A registration's rows in one statement on PostgreSQL (intake_svc.pgwrite) and the response dump without
marshmallow's per-field machinery (views.fast_dumper): what is stored and answered stays the same."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from intake_svc import pgwrite
from intake_svc.api import DUMP_PETITION, PETITION_OUT
from intake_svc.models import IdempotencyRecord, Outbox, Petition, PetitionChange, Petitioner
from intake_svc.pii import PiiVault
from intake_svc.schemas import PetitionOutSchema
from intake_svc.views import fast_dumper, petition_view
from tests.intake.conftest import ID_MAIN, ID_OTHER, full_body


def test_one_statement_per_registration_on_postgresql(intake, monkeypatch):
    # Given two petitioners and an Idempotency-Key
    calls = []
    real = pgwrite.write
    monkeypatch.setattr(pgwrite, "write", lambda conn, batch: (calls.append(batch), real(conn, batch))[1])
    body = full_body(petitioners=[{"name": "张三", "id_number": ID_MAIN, "phone": "13812345678"},
                                  {"name": "李四", "id_number": ID_OTHER}])
    headers = {**_auth(intake), "Idempotency-Key": "k-one-statement"}
    # When it is registered
    r = intake.post(body, headers=headers)
    assert r.status_code == 201, r.json
    pid = r.json["id"]
    # Then on PostgreSQL every row was written by one call (one statement), and nothing is missing either way
    if intake.runtime.engine.dialect.name == "postgresql":
        assert len(calls) == 1
        assert [t.name for t, _ in calls[0]] == ["petitions", "petitioners", "petition_changes", "idempotency_keys",
                                                  "outbox"]
    else:
        assert calls == []
    with intake.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Petitioner).where(Petitioner.petition_id == pid)) == 2
        change = s.scalar(select(PetitionChange).where(PetitionChange.petition_id == pid))
        assert change.action == "registered" and change.changes["display_no"] == r.json["display_no"]
        assert change.changes["detection"]["repeat_reasons"] == []
        record = s.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "k-one-statement"))
        assert record.status == 201 and record.body == r.json
        assert record.created_at.tzinfo is not None
        stored = s.get(Petition, pid)
        assert stored.repeat_reasons == [] and stored.registered_at == datetime.fromisoformat(r.json["registered_at"])
        assert s.scalar(select(func.count()).select_from(Outbox).where(Outbox.body.contains(pid))) >= 1
    # And the same key and body answer the stored response; another body with it is refused
    again = intake.post(body, headers=headers)
    assert (again.status_code, again.json) == (201, r.json)
    assert intake.post(full_body(), headers=headers).status_code == 409


def test_a_duplicate_in_the_statement_writes_nothing(intake):
    # Given a registered county number
    body = full_body()
    assert intake.post(body).status_code == 201
    before = {m: intake.count(m) for m in (Petition, Petitioner, PetitionChange, Outbox)}
    # When the same county number is sent again (the first pass assumes it new: the unique constraint fires)
    again = intake.post(body)
    # Then the existing petition is answered and no row of the failed statement remains
    assert again.status_code == 200 and again.json["existing"] is True
    assert {m: intake.count(m) for m in before} == before


def test_rows_leaving_a_column_to_its_default_are_refused():
    with pytest.raises(ValueError, match="defaults"):
        pgwrite._build([(Petitioner.__table__, [{"petition_id": "x", "seq": 0}])], ("petitioners",))


def _auth(intake):
    from tests.helpers import auth

    return auth(intake.settings, role="registrar", jurisdiction="411300")


def _view(**over) -> dict:
    now = datetime(2026, 11, 20, 1, 2, 3, 456789, tzinfo=timezone.utc)
    petition = SimpleNamespace(
        id="a" * 32, display_no="411302202611200001", system="s", county_no=None, channel="来访", purpose="求决",
        statutory_type="申诉求决类", petitioned_at=now - timedelta(hours=3), registered_at=now, received_at=now,
        registrar="r", registrar_kind="api_key", registrar_level="county", people_count=1, group_visit=False,
        title="t", request_text="诉求", facts="", category_code="0301", category_name="城乡建设", classic_code="03",
        category_table_version="v1", region_code="411302", complained_party="", legal_litigation=False, urgent=True,
        anonymous=False, confidential=False, first_time=True, repeat_of="b" * 32, repeat_of_display_no="411302x",
        repeat_score=0.8123, repeat_reasons=["问题属地相同", "诉求文本相似度0.81"], reflow=False, cross_level=False,
        no_longer_accepted=False, case_status="", case_resolved=False, case_final=False, case_updated_at=None,
        case_seq=None,
        petitioners=[SimpleNamespace(name="张三", id_number_enc=None, phone_enc=None, address_code="411302",
                                     address="", seq=0),
                     SimpleNamespace(name="李四", id_number_enc=None, phone_enc=None, address_code=None,
                                     address="某地", seq=1)])
    for k, v in over.items():
        setattr(petition, k, v)
    from shared.config import Settings

    return petition_view(petition, PiiVault(Settings(secret_key="x" * 32)),
                         plain=[(ID_MAIN, "13812345678"), (None, "0377-63123456")])


@pytest.mark.parametrize("over", [
    {}, {"repeat_of": None, "repeat_of_display_no": None, "repeat_score": None, "repeat_reasons": []},
    {"county_no": "C-1", "people_count": 7, "group_visit": True},
    {"repeat_score": 1},  # an int where a float is dumped: float(1)
    {"registered_at": datetime(2026, 1, 1, 8, tzinfo=timezone(timedelta(hours=8)))},
    {"title": None, "petitioned_at": None},
])
def test_fast_dump_equals_the_schema_dump(over):
    view = _view(**over)
    assert DUMP_PETITION(view) == PETITION_OUT.dump(view)
    assert list(DUMP_PETITION(view)) == list(PETITION_OUT.dump(view))  # same key order
    partial = {k: v for k, v in view.items() if k not in ("facts", "detection")}
    assert DUMP_PETITION(partial) == PETITION_OUT.dump(partial)  # missing keys are left out alike


def test_fast_dump_of_real_registrations(intake):
    # Responses of a first petition and of its repeat equal the schema's dump of what a GET reads back
    first = intake.post(full_body()).json
    second = intake.post(full_body(title="房产证还是办不下来")).json
    assert second["detection"]["repeat_of"] == first["id"]
    with intake.runtime.sessions() as s:
        for pid in (first["id"], second["id"]):
            view = petition_view(s.get(Petition, pid), PiiVault(intake.settings))
            assert DUMP_PETITION(view) == PETITION_OUT.dump(view)


def test_fast_dumper_falls_back_for_schemas_with_hooks():
    from marshmallow import fields, post_dump

    class Hooked(PetitionOutSchema):
        extra = fields.String()

        @post_dump
        def _touch(self, data, **_):
            return data

    schema = Hooked()
    assert fast_dumper(schema) == schema.dump
