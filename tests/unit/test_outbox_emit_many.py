"""The wire format of ``dump_envelope`` (byte for byte what marshmallow dumps) and ``emit_many``."""
from __future__ import annotations

import collections
import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from marshmallow import fields
from sqlalchemy import event, select
from sqlalchemy.sql import Insert

from shared import clock
from shared.contracts import (PAYLOADS, ROUTES, CaseActionRecorded, CaseAssigned, CaseStatusChanged,
                              DirectoryChanged, EnvelopeSchema, FindingChanged, NoticeAcknowledged, NoticeEscalated,
                              NoticeRequested, PayloadSchema, PetitionRegistered, dump_envelope, envelope_for)
from shared.db import create_db_engine, make_base, session_factory, unit_of_work
from shared.observability import reset_correlation_id, set_correlation_id
from shared.outbox import EMIT_BATCH, OUTBOX_WRITTEN, PENDING, OutboxMixin, emit, emit_many

UTC = timezone.utc
BEIJING = timezone(timedelta(hours=8))
AT = datetime(2026, 3, 4, 2, 30, tzinfo=UTC)


class Code(str):
    """A str subclass (e.g. an enum-like value): marshmallow's String dumps it as a plain str."""


def _reference(envelope) -> dict:
    """``dump_envelope`` as it was written first: asdict + the payload schema + the envelope schema."""
    data = dataclasses.asdict(envelope)
    data["payload"] = PAYLOADS[(envelope.type, envelope.version)]().dump(envelope.payload)
    return EnvelopeSchema().dump(data)


SAMPLES = {
    ("petition.registered", 1): [
        PetitionRegistered(petition_id="p1", display_no="411302202603040001", system="网上信访", county_no=None,
                           region_code="411302001000", category="城乡建设", channel="来信",
                           request_text="要求解决拖欠工资问题，“加急”\n第二行", petitioner_name="（保密）",
                           registered_at=AT, flags={"repeat_of": "p0", "reflow": True, "extra": "dropped"},
                           category_code="0302", urgent=True, people_count=3, petitioned_at=None),
        PetitionRegistered(petition_id=Code("p2"), display_no="2", system="s", county_no="411302",
                           region_code="411302", category="c", channel="走访", request_text="", petitioner_name="张三",
                           registered_at=datetime(2026, 3, 4, 10, 30, 0, 123456, tzinfo=BEIJING), flags={},
                           legal_litigation=1, people_count=2.0, petitioned_at=AT - timedelta(days=1)),
    ],
    ("case.assigned", 1): [
        CaseAssigned(case_id="c1", petition_id="p1", display_no="d", unit_id="u1", unit_name="东关街道",
                     region_code="411302001000", category="城乡建设", assigned_at=AT, due_at=AT + timedelta(days=60),
                     deadline_basis="《信访工作条例》第三十二条", leader_id="u1-p3", leader_name="李四"),
        CaseAssigned(case_id="c2", petition_id="p2", display_no="d2", unit_id="u2", unit_name="", region_code="41",
                     category="x", assigned_at=AT, due_at=AT, deadline_basis="", mode="divert", in_clock=False),
    ],
    ("case.status_changed", 1): [
        CaseStatusChanged(case_id="c1", petition_id="p1", display_no="d", unit_id="u1", region_code="411302",
                          status="办理中", previous_status="已签收待办理", changed_at=AT, actor="u1-p1",
                          resolved=True),
    ],
    ("case.action_recorded", 1): [
        CaseActionRecorded(case_id="c1", petition_id="p1", display_no="d", unit_id="u1", region_code="411302",
                           action="accept", label="受理", status="办理中", previous_status="待签收", at=AT,
                           actor="u1-p1", actor_role="handler", leader_id=None,
                           data={"grade": "不满意", "nested": {"a": [1, 2.5, None]}},
                           stages=[{"kind": "handling", "due_at": AT.isoformat()}, {"kind": "evaluation"}]),
        CaseActionRecorded(case_id="c1", petition_id="p1", display_no="d", unit_id="u1", region_code="411302",
                           action="evaluate", label="评价", status="已办结", previous_status="已送达待评价",
                           at=AT.astimezone(BEIJING), actor="citizen", actor_role="petitioner",
                           data=collections.OrderedDict(b=1, a=2), stages=({"kind": "x"},)),
    ],
    ("directory.changed", 1): [
        DirectoryChanged(version=7, changed_at=AT, full=True, units=[{"id": "u1", "name": "东关街道"}],
                         people=[{"id": "u1-p1", "leader": True}], removed_units=["u9"], removed_people=[]),
        DirectoryChanged(version=True, changed_at=AT, units=[], removed_people=[Code("x"), 5]),
    ],
    ("finding.changed", 1): [
        FindingChanged(finding_id="f1", finding_no="DC4113022026030001", rule="overdue", subject_kind="case",
                       subject_id="c1", unit_id="u1", region_code="411302001000", status="open", rung="urge",
                       changed_at=AT, case_id="c1", leader_id="u1-p3", reason="opened"),
        FindingChanged(finding_id="f2", finding_no="DC2", rule="lagging", subject_kind="unit", subject_id="u1",
                       unit_id="u1", region_code="411302", status="closed", rung=None, changed_at=AT),
    ],
    ("notice.requested", 1): [
        NoticeRequested(notice_type="urge", dedupe_key="urge:f1:person:p1:urge", recipient_kind="person",
                        recipient_id="p1", recipient_name="金建国", subject_id="f1", urgency="urgent",
                        context={"finding_no": "DC4113022026030001", "reason": "超期", "count": 3, "none": None}),
        NoticeRequested(notice_type="overdue", dedupe_key="k", recipient_kind="unit", recipient_id="u1",
                        recipient_name="东关街道", subject_id="f1"),
    ],
    ("notice.acknowledged", 1): [
        NoticeAcknowledged(notice_id="n1", dedupe_key="k", notice_type="urge", subject_id="f1",
                           recipient_kind="person", recipient_id="p1", unit_id=None, acknowledged_at=AT,
                           via="link", created_at=AT - timedelta(hours=1)),
    ],
    ("notice.escalated", 1): [
        NoticeEscalated(notice_id="n1", dedupe_key="k", notice_type="urge", subject_id="f1", recipient_kind="unit",
                        recipient_id="u1", unit_id="u1", step="superior", to_kind="person", to_id="u0-p1",
                        to_name="王五", escalated_at=AT, reason="2个工作日未签收"),
    ],
}


def test_every_registered_contract_has_samples():
    assert set(SAMPLES) == set(PAYLOADS)


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_dump_envelope_is_byte_for_byte_the_marshmallow_dump(key):
    for i, payload in enumerate(SAMPLES[key]):
        envelope = envelope_for(payload, id=f"e{i}", occurred_at=AT + timedelta(microseconds=i),
                                producer="supervise", correlation_id="corr-1" if i else "")
        assert (envelope.type, envelope.version) == key
        fast, reference = dump_envelope(envelope), _reference(envelope)
        assert fast == reference
        assert list(fast) == list(reference) and list(fast["payload"]) == list(reference["payload"])
        assert json.dumps(fast, ensure_ascii=False) == json.dumps(reference, ensure_ascii=False)


def test_dump_envelope_known_values():
    envelope = envelope_for(SAMPLES[("finding.changed", 1)][1], id="e1", occurred_at=AT.astimezone(BEIJING),
                            producer="supervise", correlation_id="c")
    assert json.dumps(dump_envelope(envelope), ensure_ascii=False) == (
        '{"type": "finding.changed", "version": 1, "id": "e1", "occurred_at": "2026-03-04T10:30:00+08:00", '
        '"producer": "supervise", "correlation_id": "c", "payload": {"finding_id": "f2", "finding_no": "DC2", '
        '"rule": "lagging", "subject_kind": "unit", "subject_id": "u1", "unit_id": "u1", "region_code": "411302", '
        '"status": "closed", "rung": null, "changed_at": "2026-03-04T02:30:00+00:00", "case_id": null, '
        '"leader_id": null, "reason": ""}}')
    petition = dump_envelope(envelope_for(SAMPLES[("petition.registered", 1)][0], id="e", occurred_at=AT,
                                          producer="intake", correlation_id=""))["payload"]
    assert petition["flags"] == {"repeat_of": "p0", "reflow": True}  # the nested schema's keys only
    assert type(dump_envelope(envelope_for(SAMPLES[("petition.registered", 1)][1], id="e", occurred_at=AT,
                                           producer="intake", correlation_id=""))["payload"]["petition_id"]) is str


def test_a_payload_with_data_key_attribute_and_dump_default(monkeypatch):
    """Schema features the shipped contracts do not use yet are dumped as marshmallow does."""
    @dataclass(frozen=True, kw_only=True)
    class Odd:
        name: str
        when: datetime | None = None
        raw: object = None

    class OddSchema(PayloadSchema):
        __payload__ = Odd
        name = fields.String(data_key="Name")
        label = fields.String(attribute="name", dump_only=True)
        when = fields.DateTime(format="%Y-%m-%d")
        raw = fields.Raw()
        absent = fields.String(dump_default="默认")
        absent_no_default = fields.Integer()

    monkeypatch.setitem(PAYLOADS, ("test.odd", 1), OddSchema)
    for payload in (Odd(name="名", when=AT, raw={"x": 1}), Odd(name=Code("n"), when=None, raw=Code("r"))):
        envelope = envelope_for(payload, id="e", occurred_at=AT, producer="t", correlation_id="")
        assert dump_envelope(envelope) == _reference(envelope)
    assert dump_envelope(envelope_for(Odd(name="n", when=AT), id="e", occurred_at=AT, producer="t",
                                      correlation_id=""))["payload"] == \
        {"Name": "n", "label": "n", "when": "2026-03-04", "raw": None, "absent": "默认"}


# ---------------------------------------------------------------- emit_many


@pytest.fixture
def outbox_db(backend_settings, monkeypatch):
    Base = make_base()

    class Outbox(OutboxMixin, Base):
        pass

    engine = create_db_engine(backend_settings.database_url("notify"))
    Base.metadata.create_all(engine)
    inserts = []

    @event.listens_for(engine, "before_execute")
    def _count(conn, clauseelement, multiparams, params, execution_options):
        if isinstance(clauseelement, Insert) and clauseelement.table.name == "outbox":
            inserts.append(len(multiparams) if multiparams else 1)

    monkeypatch.setattr(clock, "_current", clock.clock_for(backend_settings))
    clock.current().set(AT, frozen=True)
    token = set_correlation_id("corr-42")
    yield session_factory(engine), Outbox, inserts
    reset_correlation_id(token)
    engine.dispose()


def test_emit_many_of_many_events_with_two_routes_each(outbox_db):
    """Ids are drawn ahead for one envelope and one row per payload; petition.registered has two routes, so a
    batch of them uses ids faster than drawn (three payloads ran out: StopIteration at the third envelope)."""
    sessions, model, inserts = outbox_db
    payload = SAMPLES[("petition.registered", 1)][0]
    with unit_of_work(sessions) as s:
        event_ids = emit_many(s, model, [payload] * 7, producer="intake")
    rows = _rows(sessions, model)
    assert inserts == [14] and len(rows) == 14
    assert len(set(event_ids)) == 7 and {r.event_id for r in rows} == set(event_ids)
    assert len({r.id for r in rows} | set(event_ids)) == 21  # no id reused between rows and events


def _rows(sessions, model) -> list:
    with sessions() as s:
        return list(s.execute(select(model.id, model.event_id, model.message_type, model.queue_name,
                                     model.actor_name, model.body, model.status, model.created_at, model.attempts)))


def test_emit_many_writes_what_emit_writes_in_one_insert(outbox_db):
    sessions, model, inserts = outbox_db
    payloads = [SAMPLES[("petition.registered", 1)][0], SAMPLES[("notice.requested", 1)][0],
                SAMPLES[("directory.changed", 1)][0]]
    with unit_of_work(sessions) as s:
        one_by_one = [emit(s, model, p, producer="intake") for p in payloads]
        assert inserts == [2, 1, 2]
        batch = emit_many(s, model, payloads, producer="intake")
        assert inserts == [2, 1, 2, 5]  # ONE executemany INSERT of the 5 rows (2 + 1 + 2 routes)
        assert s.info[OUTBOX_WRITTEN] is True
    rows = _rows(sessions, model)
    assert len(rows) == 10 and len({r.id for r in rows}) == 10
    assert len(set(one_by_one + batch)) == 6

    def view(event_ids):
        out = []
        for event_id in event_ids:
            mine = sorted((r for r in rows if r.event_id == event_id), key=lambda r: r.actor_name)
            for r in mine:
                body = json.loads(r.body)
                assert body["id"] == event_id
                body.pop("id")
                out.append((r.message_type, r.queue_name, r.actor_name, r.status, r.created_at, r.attempts, body))
        return out

    assert view(one_by_one) == view(batch)
    got = view(batch)
    assert [(t, q, a, st, c, n) for t, q, a, st, c, n, _ in got] == [
        ("petition.registered", "assign", "assign.petition_registered", PENDING, AT, 0),
        ("petition.registered", "supervise", "supervise.petition_registered", PENDING, AT, 0),
        ("notice.requested", "notify", "notify.notice_requested", PENDING, AT, 0),
        ("directory.changed", "notify", "notify.directory_changed", PENDING, AT, 0),
        ("directory.changed", "supervise", "supervise.directory_changed", PENDING, AT, 0)]
    body = got[2][6]
    assert (body["type"], body["version"], body["occurred_at"], body["producer"], body["correlation_id"]) == \
        ("notice.requested", 1, "2026-03-04T02:30:00+00:00", "intake", "corr-42")
    assert body["payload"]["context"] == {"finding_no": "DC4113022026030001", "reason": "超期", "count": 3,
                                          "none": None}
    # the body on the row is the JSON of dump_envelope, key for key in its order, 中文 as is (not \u escapes)
    row = next(r for r in rows if r.event_id == batch[1])
    envelope = envelope_for(payloads[1], id=batch[1], occurred_at=AT, producer="intake", correlation_id="corr-42")
    assert list(json.loads(row.body).items()) == list(dump_envelope(envelope).items()) and "金建国" in row.body


def test_emit_many_of_nothing_writes_nothing(outbox_db):
    sessions, model, inserts = outbox_db
    with unit_of_work(sessions) as s:
        assert emit_many(s, model, [], producer="x") == []
        assert OUTBOX_WRITTEN not in s.info
    assert inserts == [] and _rows(sessions, model) == []


def test_emit_many_refuses_an_unrouted_type_and_writes_nothing(outbox_db, monkeypatch):
    sessions, model, inserts = outbox_db

    @dataclass(frozen=True, kw_only=True)
    class Lonely:
        text: str

    class LonelySchema(PayloadSchema):
        __payload__ = Lonely
        text = fields.String(required=True)

    monkeypatch.setitem(PAYLOADS, ("test.lonely", 1), LonelySchema)
    monkeypatch.setitem(ROUTES, "test.lonely", [])
    with unit_of_work(sessions) as s:
        with pytest.raises(LookupError, match="test.lonely"):
            emit_many(s, model, [SAMPLES[("finding.changed", 1)][0], Lonely(text="x")], producer="x")
        assert OUTBOX_WRITTEN not in s.info
    assert inserts == [] and _rows(sessions, model) == []



def test_emits_collected_together_are_written_in_one_insert_with_the_ids_returned(outbox_db):
    from shared.outbox import emitting_together

    sessions, model, inserts = outbox_db
    payloads = [SAMPLES[("petition.registered", 1)][0], SAMPLES[("notice.requested", 1)][0]]
    with unit_of_work(sessions) as s:
        with emitting_together(s, model, producer="assign"):
            first = emit(s, model, payloads[0], producer="assign")
            with emitting_together(s, model, producer="assign"):  # a nested block joins the outer one
                second = emit(s, model, payloads[1], producer="assign")
            assert inserts == []  # only collected so far
        assert inserts == [3]  # 2 routes + 1 route, ONE INSERT
        assert s.info[OUTBOX_WRITTEN] is True
    rows = _rows(sessions, model)
    assert sorted(r.event_id for r in rows) == sorted([first, first, second])
    assert {r.event_id: json.loads(r.body)["type"] for r in rows} == {first: "petition.registered",
                                                                      second: "notice.requested"}
    assert all(json.loads(r.body)["id"] == r.event_id for r in rows)


def test_nothing_collected_is_written_when_the_block_raises(outbox_db):
    from shared.outbox import emitting_together

    sessions, model, inserts = outbox_db
    with unit_of_work(sessions) as s:
        with pytest.raises(RuntimeError):
            with emitting_together(s, model, producer="assign"):
                emit(s, model, SAMPLES[("notice.requested", 1)][0], producer="assign")
                raise RuntimeError("boom")
        assert EMIT_BATCH not in s.info
    assert inserts == [] and _rows(sessions, model) == []
