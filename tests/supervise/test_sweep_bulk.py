"""The set-based overdue sweep: the same findings, numbers, rungs, history and notices as one by one."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from supervise_svc import checks
from supervise_svc.models import CaseStageView, Escalation, FindingEvent, FindingNotice
from tests.supervise.conftest import START, freeze, stage


def _five_overdue_on_one_unit(sv):
    """Case 0 misses its acceptance notice then its handling; cases 1–3 their handling — in this due order."""
    due = START + timedelta(days=1)
    cases = [sv.new_case() for _ in range(4)]
    sv.act(cases[0][0], "accept", stages=[stage("acceptance_notice", due),
                                          stage("handling", due + timedelta(minutes=1))])
    for i in (1, 2, 3):
        sv.act(cases[i][0], "accept", stages=[stage("handling", due + timedelta(minutes=1 + i))])
    return [c for _, c in cases]


@pytest.mark.parametrize("path", ["set_based", "row_by_row"])
def test_batch_opens_what_one_by_one_would(sv_on, monkeypatch, path):
    sv = sv_on
    if path == "row_by_row":  # the set-based statement fails: the fallback opens the same findings
        def broken(*a, **kw):
            raise RuntimeError("bulk insert failed")
        monkeypatch.setattr(checks, "open_findings", broken)
    case_ids = _five_overdue_on_one_unit(sv)
    freeze(START + timedelta(days=2))
    assert sv.sweep("overdue")["overdue"] == {"examined": 5, "opened": 5, "failed": 0}
    assert sv.sweep("overdue")["overdue"] == {"examined": 0, "opened": 0, "failed": 0}
    found = sorted(sv.findings(), key=lambda f: f.finding_no)
    # numbered in due order within 2026-03 (Beijing); the repeat rules climb within the batch:
    # 2nd on the same case -> 督办, 3rd/4th on the unit in 30 days -> 通报, 5th -> 警示
    assert [(f.finding_no, f.subject_id, f.evidence["stage"], f.rung) for f in found] == [
        ("DC4113022026030001", case_ids[0], "acceptance_notice", "urge"),
        ("DC4113022026030002", case_ids[0], "handling", "supervision_order"),
        ("DC4113022026030003", case_ids[1], "handling", "bulletin"),
        ("DC4113022026030004", case_ids[2], "handling", "bulletin"),
        ("DC4113022026030005", case_ids[3], "handling", "warning"),
    ]
    detected = START + timedelta(days=2)
    f = found[1]
    assert (f.unit_name, f.leader_id, f.status, f.rung_since, f.rectify_due_at, f.next_review_at) == \
        ("东关街道", "411302001000-p3", "open", detected, detected + timedelta(days=5), detected + timedelta(days=5))
    with sv.runtime.sessions() as s:
        history = [(e.action, e.actor, e.from_status, e.to_status, e.rung, e.data) for e in s.scalars(
            select(FindingEvent).where(FindingEvent.finding_id == f.id).order_by(FindingEvent.id))]
        assert history == [("open", "system", None, "open", None, {"cycle": f.cycle}),
                           ("enter_rung", "rule:repeat_case", "open", "open", "supervision_order",
                            {"from_rung": None, "to_rung": "supervision_order"})]
        [esc] = s.scalars(select(Escalation).where(Escalation.finding_id == f.id))
        assert (esc.rung, esc.cycle_no, esc.decided_by, esc.at) == ("supervision_order", 1, "rule:repeat_case", detected)
        rows = {(n.notice_type, n.recipient_id, n.rung) for n in s.scalars(
            select(FindingNotice).where(FindingNotice.finding_id == found[4].id))}
    assert rows == {("overdue", "411302001000", "warning"), ("warning", "411302001000-p2", "warning"),
                    ("warning", "411302001000-p3", "warning"), ("warning", "411302-xfj", "warning")}
    # the 警示 notices are urgent, with the finding's final number and rung in their context
    warning = [n for n in sv.notices(found[4].id) if n["notice_type"] == "warning"]
    assert {(n["urgency"], n["context"]["finding_no"], n["context"]["rung_label"]) for n in warning} == \
        {("urgent", "DC4113022026030005", "警示")}
    assert len(sv.notices()) == 20
    changed = [m["payload"] for m in sv.outbox("finding.changed")]
    assert sorted((c["finding_no"], c["rung"], c["reason"]) for c in changed) == [
        ("DC4113022026030001", "urge", "opened"), ("DC4113022026030002", "supervision_order", "opened"),
        ("DC4113022026030003", "bulletin", "opened"), ("DC4113022026030004", "bulletin", "opened"),
        ("DC4113022026030005", "warning", "opened")]


def test_a_row_that_cannot_be_built_is_skipped_and_not_retried(sv_on):
    sv = sv_on
    case_ids = _five_overdue_on_one_unit(sv)
    with sv.runtime.uow() as s:  # corrupt data: the stage lost its unit
        s.execute(update(CaseStageView).where(CaseStageView.case_id == case_ids[1]).values(unit_id=""))
    freeze(START + timedelta(days=2))
    assert sv.sweep("overdue")["overdue"] == {"examined": 4, "opened": 4, "failed": 1}
    assert sorted(f.subject_id for f in sv.findings()) == sorted([case_ids[0], case_ids[0], case_ids[2], case_ids[3]])
    assert sv.sweep("overdue")["overdue"] == {"examined": 0, "opened": 0, "failed": 0}


def test_an_existing_finding_is_not_opened_again_by_the_batch(sv):
    case_ids = _five_overdue_on_one_unit(sv)
    freeze(START + timedelta(days=2))
    sv.sweep("overdue")
    with sv.runtime.uow() as s:  # the stages are examined anew (as after a rebuild that lost the marks)
        s.execute(update(CaseStageView).values(overdue_found_at=None))
    assert sv.sweep("overdue")["overdue"] == {"examined": 5, "opened": 0, "failed": 0}
    assert len(sv.findings()) == 5 and len(sv.notices()) == 20
    assert {f.subject_id for f in sv.findings()} == set(case_ids)


def test_emit_many_writes_what_emit_writes(sv):
    """The batch outbox path: same routes and the very same envelope body as ``shared.outbox.emit``."""
    import json as _json
    from datetime import datetime, timezone

    from shared.contracts import FindingChanged, NoticeRequested
    from supervise_svc import findings

    payloads = [NoticeRequested(notice_type="urge", dedupe_key="urge:f1:person:p1:urge", recipient_kind="person",
                                recipient_id="p1", recipient_name="金建国", subject_id="f1", urgency="urgent",
                                context={"finding_no": "DC4113022026030001", "reason": "超期"}),
                FindingChanged(finding_id="f1", finding_no="DC4113022026030001", rule="overdue", subject_kind="case",
                               subject_id="c1", unit_id="u1", region_code="411302001000", status="open",
                               rung="urge", changed_at=datetime(2026, 3, 4, 2, tzinfo=timezone.utc), case_id="c1",
                               leader_id=None, reason="opened")]
    with sv.runtime.uow() as s:
        for p in payloads:
            sv.runtime.emit(s, p)
        findings.emit_many(s, sv.runtime.outbox_model, payloads, producer=sv.runtime.name)
    rows = sv.outbox()
    assert len(rows) == 4
    strip = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    assert strip[0] == strip[2] and strip[1] == strip[3]
    assert strip[0]["payload"]["context"] == {"finding_no": "DC4113022026030001", "reason": "超期"}
    assert strip[1]["payload"]["changed_at"] == "2026-03-04T02:00:00+00:00"
    model = sv.runtime.outbox_model
    with sv.runtime.sessions() as s:
        bodies = [(r.message_type, r.actor_name, r.status, _json.loads(r.body)["type"]) for r in s.scalars(
            select(model).order_by(model.created_at, model.message_type))]
    assert sorted(bodies) == [("finding.changed", "notify.finding_changed", "pending", "finding.changed")] * 2 + \
        [("notice.requested", "notify.notice_requested", "pending", "notice.requested")] * 2


def test_a_batch_finding_starting_at_the_interview_rung_gets_its_draft_interview(sv):
    from supervise_svc import ladder
    from supervise_svc.models import Interview

    with sv.runtime.uow() as s:
        policy = ladder.default_policy()
        ladder.store_policy(s, {**policy, "rules": {**policy["rules"], "overdue": {"first_rung": "interview"}}},
                            by="admin")
    pid, case_id = sv.new_case()
    sv.act(pid, "accept", stages=[stage("handling", START + timedelta(days=1))])
    freeze(START + timedelta(days=2))
    assert sv.sweep("overdue")["overdue"] == {"examined": 1, "opened": 1, "failed": 0}
    [f] = sv.findings()
    assert (f.rung, f.next_review_at) == ("interview", None)  # 约谈 is the highest rung time climbs to
    with sv.runtime.sessions() as s:
        [interview] = s.scalars(select(Interview))
        assert (interview.finding_id, interview.status) == (f.id, "draft")
    # at 约谈 only the supervisors (units) are told now; the unit also gets its 超期提醒
    assert {(n["notice_type"], n["recipient_id"]) for n in sv.notices(f.id)} == \
        {("interview", "411302-xfj"), ("overdue", "411302001000")}
