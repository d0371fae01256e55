"""The read model: out-of-order events, the actor path, rebuild, concurrency, one bad row skipped."""
from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from shared import clock
from shared.contracts import CaseActionRecorded, dump_envelope, envelope_for
from supervise_svc import checks
from supervise_svc.findings import open_finding
from supervise_svc.models import CaseStageView, CaseView
from tests.supervise.conftest import START, advance, freeze, stage


def _snapshot(sv) -> dict:
    skip_view = {"last_event_at"}
    with sv.runtime.sessions() as s:
        views = {v.petition_id: {c.key: getattr(v, c.key) for c in CaseView.__table__.columns if c.key not in skip_view}
                 for v in s.scalars(select(CaseView))}
        stages = sorted((st.case_id, st.kind, st.opened_at, st.due_at, st.paused, st.closed_at, st.unit_id)
                        for st in s.scalars(select(CaseStageView)))
    return {"views": views, "stages": stages}


def test_stage_bookkeeping_and_out_of_order_events(sv):
    pid = uuid.uuid4().hex
    sv.cases[pid] = {"petition_id": pid, "display_no": "411302202603020099", "region_code": "411302001000",
                     "case_id": "c" + pid[:30], "unit_id": "411302001000", "leader_id": "411302001000-p3"}
    # the action overtakes both petition.registered and case.assigned
    sv.act(pid, "sign", status="已签收待办理", stages=[stage("acceptance_notice", START + timedelta(days=15))])
    sv.register(petition_id=pid, display_no="411302202603020099")
    sv.assign(pid)
    advance(days=1)
    sv.act(pid, "accept", status="办理中", stages=[stage("handling", START + timedelta(days=61))])
    # an older action arriving late is recorded but does not move stages or the state back
    sv.act(pid, "sign", status="已签收待办理", at=START + timedelta(hours=1),
           stages=[stage("acceptance_notice", START + timedelta(days=15))])
    advance(days=1)
    sv.act(pid, "pause", status="待补充材料", stages=[stage("handling", None, paused=True)])
    advance(days=3)
    sv.act(pid, "resume", status="办理中", stages=[stage("handling", START + timedelta(days=66))])
    with sv.runtime.sessions() as s:
        view = s.get(CaseView, pid)
        rows = list(s.scalars(select(CaseStageView).order_by(CaseStageView.id)))
    assert (view.case_state, view.category, view.unit_name, view.accepted_at) == \
        ("办理中", "城乡建设", "东关街道", START + timedelta(days=1))
    assert view.due_at == START + timedelta(days=66)
    assert [(r.kind, r.closed_at, r.due_at, r.paused) for r in rows] == [
        ("acceptance_notice", START + timedelta(days=1), START + timedelta(days=15), False),
        ("handling", None, START + timedelta(days=66), False)]


def test_actor_path_dedupes_messages(sv):
    pid, case_id = sv.new_case()
    event = CaseActionRecorded(case_id=case_id, petition_id=pid, display_no=sv.cases[pid]["display_no"],
                               unit_id="411302001000", region_code="411302001000", action="evaluate", label="评价",
                               status="已送达待评价", previous_status="已送达待评价", at=clock.now(), actor="张三",
                               actor_role="handler", data={"target": "handling_unit", "grade": "不满意"})
    body = dump_envelope(envelope_for(event, id="m1", occurred_at=clock.now(), producer="assign",
                                      correlation_id="c1"))
    actor = sv.runtime.broker.get_actor("supervise.case_action_recorded")
    from dramatiq import Worker

    for _ in range(2):
        actor.send_with_options(args=(body,), message_id="m1")
    worker = Worker(sv.runtime.broker, worker_timeout=100)
    worker.start()
    try:
        sv.runtime.broker.join("supervise")
    finally:
        worker.stop()
    assert [f.rule for f in sv.findings()] == ["dissatisfied"]


def test_rebuild_gives_the_same_projection(sv_on):
    sv = sv_on
    earlier, _ = sv.new_case()
    sv.act(earlier, "sign", status="已签收待办理", stages=[stage("acceptance_notice", START + timedelta(days=15))])
    advance(hours=2)
    sv.act(earlier, "accept", stages=[stage("handling", START + timedelta(days=20))])
    advance(hours=2)
    sv.act(earlier, "issue_opinion", status="已处理待送达",
           data={"outcome": "支持", "truth": "部分属实", "commitments": [{"content": "修路", "due_date": "2026-03-05"}]},
           stages=[])
    advance(hours=2)
    sv.act(earlier, "serve", status="已送达待评价", stages=[stage("evaluation", START + timedelta(days=3)),
                                                       stage("review_request", START + timedelta(days=30))])
    advance(hours=2)
    sv.act(earlier, "sign_off", status="已办结", data={"resolution": "resolved"},
           stages=[stage("evaluation", START + timedelta(days=3)), stage("review_request", START + timedelta(days=30))])
    other, _ = sv.new_case()
    sv.act(other, "accept", stages=[stage("handling", START + timedelta(days=1))])
    freeze(START + timedelta(days=10))
    sv.register(flags={"repeat_of": earlier})
    sv.sweep("overdue", "commitments")
    before = _snapshot(sv)
    assert len(sv.findings()) == 3  # reflow, the missed handling stage, the commitment
    r = sv.client.post("/supervise/api/v1/admin/rebuild", headers=sv.headers(role="admin"))
    assert r.status_code == 200, r.json
    assert r.json == {"petitions": 3, "assignments": 2, "actions": 6}
    assert _snapshot(sv) == before
    assert sv.sweep("overdue", "commitments", "reflow") == {
        "overdue": {"examined": 0, "opened": 0, "failed": 0}, "commitments": {"opened": 0, "failed": 0},
        "reflow": {"opened": 0, "failed": 0}}
    assert sv.client.post("/supervise/api/v1/admin/rebuild", headers=sv.headers()).status_code == 403


def test_one_bad_row_is_skipped(sv, monkeypatch):
    bad_pid, bad_case = sv.new_case()
    good_pid, good_case = sv.new_case()
    for pid in (bad_pid, good_pid):
        sv.act(pid, "accept", stages=[stage("handling", START + timedelta(days=1))])
    real, real_many = checks.open_finding, checks.open_findings

    def flaky(session, runtime, **kw):
        if kw["subject_id"] == bad_case:
            raise RuntimeError("corrupt row")
        return real(session, runtime, **kw)

    def flaky_many(session, runtime, specs, **kw):  # the set-based statement fails: row by row instead
        if any(spec["subject_id"] == bad_case for spec in specs):
            raise RuntimeError("corrupt row")
        return real_many(session, runtime, specs, **kw)

    monkeypatch.setattr(checks, "open_finding", flaky)
    monkeypatch.setattr(checks, "open_findings", flaky_many)
    freeze(START + timedelta(days=2))
    assert sv.sweep("overdue")["overdue"] == {"examined": 1, "opened": 1, "failed": 1}
    assert [f.subject_id for f in sv.findings()] == [good_case]
    assert sv.sweep("overdue")["overdue"]["examined"] == 0  # the bad row does not block the next runs


@pytest.fixture
def pg_sv(settings, pg_urls):
    """supervise on PostgreSQL only: what these tests prove (row locks, SKIP LOCKED) has no SQLite analogue."""
    from tests.supervise.conftest import build

    svc = build(settings.replace(database_urls=pg_urls))
    yield svc
    svc.runtime.close()


def test_two_sweeps_at_once_open_one_finding(pg_sv):
    sv = pg_sv
    for _ in range(30):
        pid, _ = sv.new_case()
        sv.act(pid, "accept", stages=[stage("handling", START + timedelta(days=1))])
    freeze(START + timedelta(days=2))
    results = []
    threads = [threading.Thread(target=lambda: results.append(checks.overdue_sweep(sv.runtime))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["opened"] for r in results) == 30
    assert len(sv.findings()) == 30


def test_concurrent_open_finding_inserts_one(pg_sv):
    sv = pg_sv
    barrier = threading.Barrier(2)
    outcome = {}

    def attempt(name: str, hold: float) -> None:
        with sv.runtime.uow() as s:
            if name == "second":
                barrier.wait()
            f = open_finding(s, sv.runtime, rule="dissatisfied", subject_kind="case", subject_id="c1", cycle="c1",
                             unit_id="411302001000", region_code="411302001000", evidence={"text": "不满意"},
                             detected_at=clock.now())
            outcome[name] = f is not None
            if name == "first":
                barrier.wait()
                time.sleep(hold)

    threads = [threading.Thread(target=attempt, args=("first", 0.5)),
               threading.Thread(target=attempt, args=("second", 0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome == {"first": True, "second": False}
    assert len(sv.findings()) == 1
