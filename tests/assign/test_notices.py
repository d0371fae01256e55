"""Notices requested from notify_svc, and the warning sweep over open stages (临期提醒)."""
from __future__ import annotations

from sqlalchemy import select, update

from assign_svc import notices
from assign_svc.models import CaseStage
from notify_svc.templates import render
from shared.sweeps import run_sweeps
from tests.assign.conftest import beijing, freeze


def _warnings(assign) -> list[dict]:
    return [m["payload"] for m in assign.outbox("notice.requested") if m["payload"]["notice_type"] == "deadline_warning"]


def test_the_sweep_warns_each_due_stage_once(assign_on):
    assign = assign_on
    # Given a case in 卧龙区 registered Monday 09-22: acceptance due 10-09, warned 3 days before (10-06)
    case_id = assign.register(region_code="411303")
    freeze(beijing(2025, 10, 5))
    assert run_sweeps(assign.runtime)["deadline_warnings"] == {"warned": 0, "failed": 0}
    # When the warning time has come
    freeze(beijing(2025, 10, 7))
    assert run_sweeps(assign.runtime)["deadline_warnings"] == {"warned": 1, "failed": 0}
    # Then the unit gets one 临期提醒, and a second sweep sends nothing more
    assert run_sweeps(assign.runtime)["deadline_warnings"]["warned"] == 0
    [warning] = _warnings(assign)
    assert warning["recipient_id"] == "411303-zjj" and warning["subject_id"] == case_id
    assert warning["dedupe_key"].startswith(f"deadline_warning:{case_id}:unit:411303-zjj:acceptance_notice:")
    title, body = render("deadline_warning", warning["context"])
    assert title == f"临期提醒：信访件 {warning['context']['display_no']}" and "受理告知" in body and "2025年10月09日" in body


def test_one_bad_row_is_logged_and_skipped(assign, caplog):
    # Given two cases due for a warning, one of them corrupt (a warning time but no deadline)
    bad, good = assign.register(region_code="411303"), assign.register(region_code="411303")
    with assign.runtime.uow() as s:
        s.execute(update(CaseStage).where(CaseStage.case_id == bad).values(due_at=None))
    freeze(beijing(2025, 10, 7))
    # When the sweep runs
    result = notices.warning_sweep(assign.runtime)
    # Then the good one is warned, the bad one logged and skipped
    assert result == {"warned": 1, "failed": 1}
    assert [w["subject_id"] for w in _warnings(assign)] == [good]
    assert "failed; skipped" in caplog.text


def test_an_extension_moves_the_warning_into_a_new_cycle(assign):
    from tests.assign.test_workflow import handler, head, to_handling

    case_id = assign.register(region_code="411302")
    to_handling(assign, case_id)
    with assign.runtime.sessions() as s:
        stage = s.scalars(select(CaseStage).where(CaseStage.case_id == case_id, CaseStage.kind == "handling")).one()
        first_warn = stage.warn_at
    freeze(first_warn)
    notices.warning_sweep(assign.runtime)
    keys = {w["dedupe_key"] for w in _warnings(assign) if w["subject_id"] == case_id}
    assert any(":handling:" in k for k in keys)
    assign.act(case_id, "request_extension", {"days": 30, "reason": "需会商"}, **handler(assign))
    assert assign.act(case_id, "approve_extension", **head(assign)).status_code == 200
    notices.warning_sweep(assign.runtime)
    assert {w["dedupe_key"] for w in _warnings(assign) if w["subject_id"] == case_id} == keys  # not yet due again
    with assign.runtime.sessions() as s:
        stage = s.get(CaseStage, stage.id)
        assert stage.warned_at is None and stage.warn_at > first_warn
        freeze(stage.warn_at)
    notices.warning_sweep(assign.runtime)
    assert len({w["dedupe_key"] for w in _warnings(assign) if w["subject_id"] == case_id and ":handling:" in w["dedupe_key"]}) == 2


def test_every_notice_assign_requests_renders_in_notify(assign):
    from tests.assign.test_workflow import handler, to_handling

    group = assign.register(people_count=9)
    to_handling(assign, group)
    assign.act(group, "request_extension", {"days": 10, "reason": "需补充调查"}, **handler(assign))
    other = assign.register()
    assign.act(other, "object", {"reason": "不属于本单位"}, **handler(assign))
    types = set()
    for m in assign.outbox("notice.requested"):
        payload = m["payload"]
        title, body = render(payload["notice_type"], payload["context"])
        assert payload["context"]["display_no"] in title and body
        types.add(payload["notice_type"])
    assert types == {"assignment", "ownership", "extension_pending", "objection_returned"}


def test_two_sweeps_at_once_warn_each_stage_exactly_once(assign_on):
    import threading

    assign = assign_on
    # Given 30 cases due for a warning
    for _ in range(30):
        assign.register(region_code="411303")
    freeze(beijing(2025, 10, 7))
    # When two sweeps run at the same moment (claims use FOR UPDATE SKIP LOCKED on PostgreSQL)
    barrier, results = threading.Barrier(2), []

    def sweep():
        barrier.wait()
        results.append(notices.warning_sweep(assign.runtime)["warned"])

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Then every stage was warned once, by one of them
    assert sum(results) == 30
    keys = [w["dedupe_key"] for w in _warnings(assign)]
    assert len(keys) == len(set(keys)) == 30
