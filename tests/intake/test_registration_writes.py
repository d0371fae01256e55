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

#: A test of PostgreSQL's way only: the ``intake`` fixture on PostgreSQL alone.
ON_POSTGRESQL = pytest.mark.parametrize("backend_settings", ["postgres"], indirect=True)


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


@ON_POSTGRESQL
def test_postgresql_registers_without_a_transaction_block(intake, monkeypatch):
    """PostgreSQL: a new registration is ``service.register_direct``: the bump with the detection query,
    then the one writing statement, each its own transaction; the service engine's sessions are not used
    and the relay is woken as by a commit."""
    from sqlalchemy import event

    from intake_svc import service

    begins, kicks, statements = [], [], []

    def on_begin(conn):
        begins.append(conn)

    event.listen(intake.runtime.engine, "begin", on_begin)
    monkeypatch.setattr(intake.runtime.relay, "kick", lambda: kicks.append(1))
    real_run = pgwrite.run_raw
    monkeypatch.setattr(pgwrite, "run_raw", lambda conn, sql, params, **kw: (
        statements.append((conn.connection.dbapi_connection.autocommit, sql.split()[0])),
        real_run(conn, sql, params, **kw))[1])
    try:
        # Given an earlier petition of the same person
        first = intake.post(full_body()).json
        begins.clear(), kicks.clear(), statements.clear()
        # When a repeat of it is registered
        r = intake.post(full_body(title="房产证还是办不下来"))
    finally:
        event.remove(intake.runtime.engine, "begin", on_begin)
    # Then two statements in autocommit did it all: the bump with the candidates, then the write
    assert r.status_code == 201, r.json
    assert statements == [(True, b"WITH"), (True, b"WITH")]
    assert begins == [] and kicks == [1]
    assert r.json["detection"]["repeat_of"] == first["id"]
    assert int(r.json["display_no"][-4:]) == int(first["display_no"][-4:]) + 1
    # And the counter's pool does not wait for the WAL flush, the writing pool does
    for synchronous, expected in ((False, "off"), (True, "on")):
        with service._autocommit_engine(intake.runtime.engine, synchronous=synchronous).connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == expected


@ON_POSTGRESQL
def test_number_and_candidates_agree_with_the_transactional_path(intake):
    """The one statement (bump + candidates) reads the same earlier petitions, newest first, as detection's
    own query, and draws the next number of the counter; with no earlier petition it still draws one."""
    from intake_svc import detection, service
    from shared import clock

    vault = intake.app.extensions["xinfang_pii"]
    blind = vault.blind(ID_MAIN)
    since = clock.now() - timedelta(days=365)
    engine, tz = intake.runtime.engine, intake.settings.timezone
    number, none = service._number_and_candidates(engine, "411302", tz, "id_blind", [blind], since)
    assert none == [] and number.startswith("411302")
    registered = [intake.post(full_body(title=f"房产证第{i}次")).json["id"] for i in range(3)]
    following, rows = service._number_and_candidates(engine, "411302", tz, "id_blind", [blind, "x" * 64], since)
    assert int(following[-4:]) == int(number[-4:]) + 4
    with intake.runtime.sessions() as session:
        expected = detection._candidates(session, "id_blind", [blind, "x" * 64], since)
    assert [r.id for r in rows] == [r.id for r in expected] == registered[::-1]
    assert [tuple(r)[1:] for r in rows] == [tuple(r) for r in expected]


@ON_POSTGRESQL
def test_a_direct_registration_survives_a_dead_pooled_connection(intake, pg_admin, monkeypatch):
    """A connection of the counter's pool that died while idle and escaped the idle check: the statement
    is retried once on a fresh connection, and the registration succeeds."""
    import time

    from sqlalchemy import text

    from intake_svc import service
    from shared import db

    assert intake.post(full_body()).status_code == 201
    pool = service._autocommit_engine(intake.runtime.engine)
    with pool.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600)
    with pg_admin.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    time.sleep(0.1)
    r = intake.post(full_body(title="房产证还是办不下来"))
    assert r.status_code == 201, r.json
    assert r.json["detection"]["repeat_of"] is not None
