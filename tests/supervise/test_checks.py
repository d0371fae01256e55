"""五必查 checks 1–4: each caught exactly once, not caught when it should not be, a new cycle opens anew."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from supervise_svc.models import CaseStageView, CaseView
from tests.supervise.conftest import START, advance, freeze, stage


def test_overdue_handling_stage_is_caught_once_with_notices(sv_on):
    # Given a case accepted with a 60-day handling deadline
    sv = sv_on
    pid, case_id = sv.new_case()
    due = START + timedelta(days=60)
    sv.act(pid, "accept", stages=[stage("handling", due)])
    # When the sweep runs the day before the deadline, then one minute after it, then again
    freeze(due - timedelta(days=1))
    assert sv.sweep("overdue")["overdue"]["opened"] == 0
    freeze(due + timedelta(minutes=1))
    assert sv.sweep("overdue")["overdue"] == {"examined": 1, "opened": 1, "failed": 0}
    assert sv.sweep("overdue")["overdue"]["examined"] == 0
    # Then exactly one finding against the township, its leader, with the stage as evidence
    [f] = sv.findings()
    assert (f.rule, f.subject_kind, f.subject_id, f.unit_id, f.leader_id, f.status, f.rung) == \
        ("overdue", "case", case_id, "411302001000", "411302001000-p3", "open", "urge")
    assert f.cycle == f"handling:{int(due.timestamp())}"
    assert f.dedupe_key == f"overdue:case:{case_id}:handling:{int(due.timestamp())}"
    assert f.evidence["stage"] == "handling" and f.evidence["due_at"] == due.isoformat()
    assert f.finding_no == "DC4113022026050001"  # detected 2026-05-01 Beijing time
    # and notices: 超期提醒 to the unit, 催办 to the head, the owning leader and the county petition department
    notices = {(n["notice_type"], n["recipient_id"]) for n in sv.notices(f.id)}
    assert notices == {("overdue", "411302001000"), ("urge", "411302001000-p2"), ("urge", "411302001000-p3"),
                       ("urge", "411302-xfj")}
    urge = next(n for n in sv.notices(f.id) if n["recipient_id"] == "411302001000-p2")
    assert urge["dedupe_key"] == f"urge:{f.id}:person:411302001000-p2:urge"
    assert set(urge["context"]) == {"recipient_name", "unit_name", "region_code", "finding_no", "rule_label",
                                    "rung_label", "reason", "evidence_text", "display_no", "detected_at",
                                    "rectify_due_at", "link"}
    assert (urge["context"]["recipient_name"], urge["context"]["rung_label"], urge["context"]["unit_name"]) == \
        ("金建国", "催办", "东关街道")
    changed = [m["payload"] for m in sv.outbox("finding.changed")]
    assert [(c["status"], c["rung"]) for c in changed] == [("open", "urge")]


def test_paused_closed_and_petitioner_windows_are_not_overdue(sv_on):
    sv = sv_on
    # paused (待补充材料): due_at NULL
    p1, _ = sv.new_case()
    sv.act(p1, "pause", status="待补充材料", stages=[stage("handling", None, paused=True)])
    # closed before its due: the next action no longer lists it
    p2, _ = sv.new_case()
    sv.act(p2, "sign", stages=[stage("acceptance_notice", START + timedelta(days=15))])
    sv.act(p2, "accept", stages=[], at=START + timedelta(days=3))
    # the petitioner's own windows
    p3, _ = sv.new_case()
    sv.act(p3, "serve", status="已送达待评价", stages=[stage("review_request", START + timedelta(days=30)),
                                                  stage("evaluation", START + timedelta(days=10))])
    freeze(START + timedelta(days=90))
    result = sv.sweep("overdue")["overdue"]
    assert result == {"examined": 2, "opened": 0, "failed": 0}  # review_request + evaluation examined only
    assert sv.findings() == []
    with sv.runtime.sessions() as s:
        assert s.get(CaseView, p3).evaluation_expired is True
        closed = s.scalar(select(CaseStageView).where(CaseStageView.petition_id == p2))
        assert closed.closed_at == START + timedelta(days=3)


def test_stage_closed_after_its_due_between_two_sweeps_is_still_overdue(sv_on):
    """The deadline (23:59:59) passed and the unit accepted the next afternoon, before any sweep saw the
    stage open: the closing action itself opens the finding, once; the next sweep finds nothing more."""
    sv = sv_on
    pid, case_id = sv.new_case()
    due = START + timedelta(days=15)
    sv.act(pid, "sign", stages=[stage("acceptance_notice", due), stage("objection", START + timedelta(days=5))])
    freeze(due - timedelta(hours=1))
    assert sv.sweep("overdue")["overdue"]["opened"] == 0  # the evening sweep: not yet due
    late = due + timedelta(hours=15)
    sv.act(pid, "accept", stages=[stage("handling", START + timedelta(days=60))], at=late)
    [f] = sv.findings()
    assert (f.rule, f.subject_id, f.cycle) == ("overdue", case_id, f"acceptance_notice:{int(due.timestamp())}")
    assert f.evidence["closed_at"] == late.isoformat() and "逾期办理" in f.evidence["text"]
    freeze(late + timedelta(hours=1))
    assert sv.sweep("overdue")["overdue"]["opened"] == 0
    assert len(sv.findings()) == 1  # the objection window (the unit's right, not its duty) is no finding


def test_extended_deadline_is_a_new_cycle(sv):
    pid, case_id = sv.new_case()
    first = START + timedelta(days=60)
    sv.act(pid, "accept", stages=[stage("handling", first)])
    freeze(first + timedelta(hours=1))
    sv.sweep("overdue")
    second = first + timedelta(days=30)
    sv.act(pid, "approve_extension", status="已延期", stages=[stage("handling", second)])
    freeze(second - timedelta(hours=1))
    assert sv.sweep("overdue")["overdue"]["opened"] == 0
    freeze(second + timedelta(hours=1))
    assert sv.sweep("overdue")["overdue"]["opened"] == 1
    findings = sv.findings()
    assert [f.cycle for f in findings] == [f"handling:{int(first.timestamp())}", f"handling:{int(second.timestamp())}"]
    # the second finding on the same case within 90 days starts at 督办 (repeat_case)
    assert [f.rung for f in findings] == ["urge", "supervision_order"]


def test_reflow_against_the_earlier_closed_case(sv_on):
    sv = sv_on
    earlier, earlier_case = sv.new_case(unit_id="411302-zjj", unit_name="宛城区住房和城乡建设局",
                                        leader_id="411302-zjj-p1")
    sv.act(earlier, "sign_off", status="已办结", data={"resolution": "resolved"})
    advance(days=20)
    # a repeat of an open case is not reflow
    open_pid, _ = sv.new_case()
    sv.register(flags={"repeat_of": open_pid})
    assert sv.findings() == []
    new = sv.register(flags={"repeat_of": earlier, "reflow": True})
    [f] = sv.findings()
    assert (f.rule, f.subject_id, f.cycle, f.unit_id, f.leader_id, f.rung) == \
        ("reflow", earlier_case, new, "411302-zjj", "411302-zjj-p1", "supervision_order")
    assert f.evidence["earlier_display_no"] == sv.cases[earlier]["display_no"]
    assert f.evidence["new_display_no"] == sv.cases[new]["display_no"]
    with sv.runtime.sessions() as s:
        assert s.get(CaseView, earlier).cycle == 2
    assert sv.sweep("reflow")["reflow"]["opened"] == 0


def test_reflow_found_by_the_sweep_when_the_closure_is_reported_late(sv):
    earlier, _ = sv.new_case()
    sv.act(earlier, "accept", stages=[], at=START - timedelta(days=10))
    new = sv.register(flags={"repeat_of": earlier})
    assert sv.findings() == []
    sv.act(earlier, "sign_off", status="已办结", at=START - timedelta(hours=1))  # closed before, reported after
    assert sv.sweep("reflow")["reflow"]["opened"] == 1
    [f] = sv.findings()
    assert f.cycle == new and f.rule == "reflow"


def test_dissatisfied_once_per_case_cycle(sv_on):
    sv = sv_on
    pid, case_id = sv.new_case()
    sv.act(pid, "evaluate", data={"target": "handling_unit", "grade": "满意"})
    assert sv.findings() == []
    sv.act(pid, "evaluate", data={"target": "handling_unit", "grade": "不满意", "reason": "没有解决"})
    sv.act(pid, "evaluate", data={"target": "petition_dept", "grade": "不满意"})
    [f] = sv.findings()
    assert (f.rule, f.cycle, f.evidence["reason"]) == ("dissatisfied", "c1", "没有解决")
    # reopened after closure (复查): a new cycle, a new finding
    sv.act(pid, "sign_off", status="已办结")
    sv.act(pid, "request_review", status="复查中")
    sv.act(pid, "evaluate", data={"target": "handling_unit", "grade": "不满意"})
    assert [f.cycle for f in sv.findings(rule="dissatisfied")] == ["c1", "c2"]


def test_perfunctory_closure_and_overdue_commitment(sv_on):
    sv = sv_on
    pid, case_id = sv.new_case()
    sv.act(pid, "submit_closure", data={"perfunctory": False, "failed": []})
    assert sv.findings() == []
    sv.act(pid, "submit_closure", data={"perfunctory": True, "failed": ["served_on_time", "carried_out"]})
    [f] = sv.findings()
    assert (f.rule, f.cycle, f.evidence["failed"]) == ("not_carried_out", "closure:c1",
                                                       ["served_on_time", "carried_out"])
    other, other_case = sv.new_case()
    sv.act(other, "issue_opinion", status="已处理待送达",
           data={"outcome": "支持", "truth": "属实", "commitments": [
               {"content": "修复外墙", "due_date": "2026-03-10"}, {"content": "清理垃圾", "due_date": "2026-03-20"}]})
    sv.act(other, "fulfil_commitment", data={"index": 1})
    freeze(START + timedelta(days=8, hours=13))  # 2026-03-10 23:00 Beijing: still due today
    assert sv.sweep("commitments")["commitments"]["opened"] == 0
    freeze(START + timedelta(days=9))  # 2026-03-11 10:00 Beijing
    assert sv.sweep("commitments")["commitments"]["opened"] == 1
    freeze(START + timedelta(days=30))
    assert sv.sweep("commitments")["commitments"]["opened"] == 0
    [c] = sv.findings(subject_id=other_case)
    assert (c.cycle, c.evidence["content"], c.evidence["due_date"]) == ("commitment:0", "修复外墙", "2026-03-10")
    with sv.runtime.sessions() as s:
        view = s.get(CaseView, other)
        assert (view.opinion_outcome, view.truth, view.commitments_due_at) == ("支持", "属实", None)
