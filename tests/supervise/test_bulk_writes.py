"""The bulk writes of the set-based sweeps: ``bulk_insert`` (COPY on PostgreSQL) and ``insert_new_findings``
(one INSERT … ON CONFLICT (dedupe_key) DO NOTHING, unnest on PostgreSQL) store what the ORM reads back."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from shared.bulk import bulk_insert
from supervise_svc.findings import insert_new_findings
from supervise_svc.models import Finding, FindingEvent, FindingNotice

UTC = timezone.utc
AT = datetime(2026, 3, 4, 10, 30, 0, 123456, tzinfo=timezone(timedelta(hours=8)))  # 02:30:00.123456 UTC


def _finding(n: int, *, key: str | None = None, **over) -> dict:
    row = dict(id=f"f{n:031d}", finding_no=f"DC411302202603{n:04d}", rule="overdue", subject_kind="case",
               subject_id=f"c{n}", cycle="handling:1772419200", case_id=f"c{n}", petition_id=f"p{n}",
               display_no=f"41130200000{n}", unit_id="411302001000", unit_name="东关街道", region_code="411302001000",
               leader_id=None, evidence={"text": "办理期限已届满", "stage": "handling", "n": n, "none": None},
               detected_at=AT, status="open", rung="urge", rung_since=AT, rectify_due_at=AT + timedelta(days=5),
               next_review_at=None, held=False, hold_reason="", proof="", cycle_no=1,
               dedupe_key=key or f"overdue:case:c{n}:handling:1772419200", updated_at=AT)
    row.update(over)
    return row


def test_insert_new_findings_inserts_and_skips_taken_keys(sv_on):
    rt = sv_on.runtime
    with rt.uow() as s:
        assert insert_new_findings(s, [_finding(1), _finding(2, leader_id="411302001000-p3")]) == \
            {_finding(1)["id"], _finding(2)["id"]}
    with rt.uow() as s:  # a concurrent opener took key 2 first: that row is skipped, 3 is opened
        taken = _finding(9, key=_finding(2)["dedupe_key"], finding_no="DC4113022026039999")
        assert insert_new_findings(s, [taken, _finding(3)]) == {_finding(3)["id"]}
        assert insert_new_findings(s, []) == set()
    with rt.sessions() as s:
        stored = {f.id: f for f in s.scalars(select(Finding))}
    assert sorted(stored) == sorted(_finding(n)["id"] for n in (1, 2, 3))
    one, two = stored[_finding(1)["id"]], stored[_finding(2)["id"]]
    assert (one.finding_no, one.leader_id, one.evidence, one.held, one.next_review_at, one.cycle_no) == \
        ("DC4113022026030001", None, {"text": "办理期限已届满", "stage": "handling", "n": 1, "none": None}, False,
         None, 1)
    assert one.detected_at == datetime(2026, 3, 4, 2, 30, 0, 123456, tzinfo=UTC)
    assert one.rectify_due_at == datetime(2026, 3, 9, 2, 30, 0, 123456, tzinfo=UTC)
    assert (two.finding_no, two.leader_id) == ("DC4113022026030002", "411302001000-p3")


def test_bulk_insert_stores_what_the_orm_reads(sv_on):
    rt = sv_on.runtime
    events = [dict(finding_id="f1", at=AT, actor="system", action="open", from_status=None, to_status="open",
                   rung=None, reason="没有按期化解：信访件“甲”\t逾期\n第二行\\", data={"cycle": "handling:1"}),
              dict(finding_id="f1", at=AT, actor="rule:first_rung_overdue", action="enter_rung", from_status="open",
                   to_status="open", rung="urge", reason="", data={"from_rung": None, "to_rung": "urge"})]
    notices = [dict(dedupe_key=f"urge:f1:{kind}:{rid}:urge", finding_id="f1", notice_type="urge", rung="urge",
                    recipient_kind=kind, recipient_id=rid, recipient_name=name, unit_id=unit, requested_at=AT,
                    notice_id=None, acknowledged_at=None, via=None, escalations=0, last_escalation=last)
               for kind, rid, name, unit, last in (("person", "u1-p2", "金建国", "u1", None),
                                                   ("unit", "411302-xfj", "卧龙区信访局", None, {"step": "remind"}))]
    with rt.uow() as s:
        bulk_insert(s, FindingEvent.__table__, events)
        bulk_insert(s, FindingNotice.__table__, notices)
        bulk_insert(s, FindingNotice.__table__, [])
    with rt.sessions() as s:
        stored = [(e.id, e.at, e.actor, e.from_status, e.rung, e.reason, e.data)
                  for e in s.scalars(select(FindingEvent).order_by(FindingEvent.id))]
        rows = {n.recipient_id: (n.recipient_name, n.unit_id, n.requested_at, n.notice_id, n.escalations,
                                 n.last_escalation) for n in s.scalars(select(FindingNotice))}
    at = datetime(2026, 3, 4, 2, 30, 0, 123456, tzinfo=UTC)
    assert stored == [(1, at, "system", None, None, "没有按期化解：信访件“甲”\t逾期\n第二行\\", {"cycle": "handling:1"}),
                      (2, at, "rule:first_rung_overdue", "open", "urge", "", {"from_rung": None, "to_rung": "urge"})]
    assert rows == {"u1-p2": ("金建国", "u1", at, None, 0, None),
                    "411302-xfj": ("卧龙区信访局", None, at, None, 0, {"step": "remind"})}


def test_a_failed_bulk_insert_rolls_back_to_its_savepoint_and_the_transaction_goes_on(sv_on):
    rt = sv_on.runtime
    row = dict(dedupe_key="urge:f1:unit:u1:urge", finding_id="f1", notice_type="urge", rung="urge",
               recipient_kind="unit", recipient_id="u1", recipient_name="东关街道", unit_id="u1", requested_at=AT,
               notice_id=None, acknowledged_at=None, via=None, escalations=0, last_escalation=None)
    with rt.uow() as s:
        bulk_insert(s, FindingNotice.__table__, [row])
        with pytest.raises(IntegrityError):  # the key exists: the whole batch fails, as one INSERT would
            with s.begin_nested():
                bulk_insert(s, FindingNotice.__table__, [{**row, "dedupe_key": "other"}, row])
        bulk_insert(s, FindingNotice.__table__, [{**row, "dedupe_key": "third"}])
    with rt.sessions() as s:
        assert sorted(s.scalars(select(FindingNotice.dedupe_key))) == ["third", "urge:f1:unit:u1:urge"]


def test_reserve_number_blocks_continues_each_county_sequence_in_one_statement(sv_on):
    from supervise_svc.findings import next_number, reserve_number_blocks

    rt = sv_on.runtime
    at = datetime(2026, 3, 31, 17, tzinfo=UTC)  # 2026-04-01 01:00 in Beijing: April's sequences
    with rt.uow() as s:
        assert next_number(s, "DC", "411302001000", at) == "DC4113022026040001"
    with rt.uow() as s:
        blocks = reserve_number_blocks(s, "DC", {"411302": 2, "411303": 3, "411302001": 1, "411304": 0}, at)
        assert reserve_number_blocks(s, "DC", {}, at) == {}
    assert blocks == {"411302": ["DC4113022026040002", "DC4113022026040003"],
                      "411303": ["DC4113032026040001", "DC4113032026040002", "DC4113032026040003"],
                      "411302001": ["DC4113022026040004"]}
    with rt.uow() as s:
        assert next_number(s, "DC", "411303", at) == "DC4113032026040004"
