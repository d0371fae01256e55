"""The case view's deadline slots (acceptance_due_at …) as the projection keeps them, and the one-GROUP-BY
counts against the former join of the stage rows."""
from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import select

from supervise_svc.models import CaseStageView, CaseView
from supervise_svc.models import ScoreFact
from supervise_svc.scores import facts
from supervise_svc.scores.aggregate import month_counts, month_counts_joined, month_counts_slots
from supervise_svc.scores.domain import month_bounds
from tests.scores.conftest import bj
from tests.supervise.conftest import START, advance, build, stage

SLOTS = ("acceptance_due_at", "acceptance_closed_at", "handling_due_at", "handling_closed_at", "assigned_due_at",
         "assigned_closed_at", "evaluation_due_at", "deadline_rows")


@pytest.fixture
def proj(settings):
    """supervise_svc fed through its projection functions (tests/supervise's helper), on SQLite."""
    svc = build(settings)
    yield svc
    svc.runtime.close()


@pytest.fixture
def proj_on(backend_settings):
    """The same on each backend."""
    svc = build(backend_settings)
    yield svc
    svc.runtime.close()


def _slots(sv, pid) -> dict:
    with sv.runtime.sessions() as s:
        view = s.get(CaseView, pid)
        return {c: getattr(view, c) for c in SLOTS}


def _expect(**given) -> dict:
    out = dict.fromkeys(SLOTS)
    out["deadline_rows"] = False
    out.update(given)
    return out


def day(n: float):
    return START + timedelta(days=n)


def test_slots_follow_the_stages_through_a_case_and_a_rebuild(proj_on):
    sv = proj_on
    pid, _ = sv.new_case()
    sv.act(pid, "sign", status="已签收待办理", stages=[stage("acceptance_notice", day(15)), stage("assigned", day(40))])
    assert _slots(sv, pid) == _expect(acceptance_due_at=day(15), assigned_due_at=day(40))
    advance(days=1)
    sv.act(pid, "accept", stages=[stage("handling", day(61)), stage("assigned", day(40))])
    assert _slots(sv, pid) == _expect(acceptance_due_at=day(15), acceptance_closed_at=day(1),
                                      handling_due_at=day(61), assigned_due_at=day(40))
    # an older action arriving late moves nothing
    sv.act(pid, "sign", status="已签收待办理", at=START + timedelta(hours=1),
           stages=[stage("acceptance_notice", day(15)), stage("assigned", day(40))])
    advance(days=1)
    sv.act(pid, "pause", status="待补充材料", stages=[stage("handling", None, paused=True), stage("assigned", day(40))])
    assert _slots(sv, pid)["handling_due_at"] is None
    advance(days=3)
    sv.act(pid, "resume", stages=[stage("handling", day(66)), stage("assigned", day(40))])
    advance(days=1)
    # 延期 approved: both headline stages move, on the same rows
    sv.act(pid, "approve_extension", stages=[stage("handling", day(96)), stage("assigned", day(70))])
    assert _slots(sv, pid) == _expect(acceptance_due_at=day(15), acceptance_closed_at=day(1),
                                      handling_due_at=day(96), assigned_due_at=day(70))
    advance(days=20)
    sv.act(pid, "serve", status="已送达待评价", stages=[stage("evaluation", day(58))])
    expected = _expect(acceptance_due_at=day(15), acceptance_closed_at=day(1), handling_due_at=day(96),
                       handling_closed_at=day(26), assigned_due_at=day(70), assigned_closed_at=day(26),
                       evaluation_due_at=day(58))
    assert _slots(sv, pid) == expected
    advance(days=1)
    sv.act(pid, "evaluate", status="已评价", data={"target": "handling_unit", "grade": "满意"}, stages=[])
    assert _slots(sv, pid) == expected  # a closed evaluation window keeps its due; no closing slot

    r = sv.client.post("/supervise/api/v1/admin/rebuild", headers=sv.headers(role="admin"))

    assert r.status_code == 200, r.json
    assert _slots(sv, pid) == expected


def test_a_second_row_of_a_kind_empties_the_slots(proj):
    sv = proj
    pid, _ = sv.new_case()
    sv.act(pid, "sign", status="已签收待办理", stages=[stage("acceptance_notice", day(15))])
    advance(days=2)
    sv.act(pid, "reroute", status="待签收", stages=[])  # the first 受理告知 closes
    assert _slots(sv, pid) == _expect(acceptance_due_at=day(15), acceptance_closed_at=day(2))
    advance(days=1)
    sv.act(pid, "sign", status="已签收待办理", stages=[stage("acceptance_notice", day(18))])

    assert _slots(sv, pid) == _expect(deadline_rows=True)
    assert _stage_flags(sv, pid) == [True, True]  # both 受理告知 rows: the scorecard finds them by the flag
    r = sv.client.post("/supervise/api/v1/admin/rebuild", headers=sv.headers(role="admin"))
    assert r.status_code == 200, r.json
    assert _slots(sv, pid) == _expect(deadline_rows=True)
    assert _stage_flags(sv, pid) == [True, True]


def _stage_flags(sv, pid) -> list[bool]:
    with sv.runtime.sessions() as s:
        return list(s.scalars(select(CaseStageView.deadline_rows).where(CaseStageView.petition_id == pid)
                              .order_by(CaseStageView.id)))


def test_the_one_group_by_counts_as_the_former_join_on_random_cases(sup_on):
    """Random cases (0–2 rows of each scored kind, open/closed, on time/late, 涉法涉诉, villages) over
    three months: the slot GROUP BY (+ the multi-row cases' rows) equals the former join exactly."""
    rng = random.Random(20261)
    regions = ("411302001000", "411302001007", "411302002000", "411303001000", "411302")

    def when(lo: int, hi: int):
        return bj(2026, 9, 1) + timedelta(hours=rng.randrange(lo * 24, hi * 24))

    for _ in range(160):
        stages = []
        for kind in ("acceptance_notice", "handling", "assigned", "evaluation"):
            for _ in range(rng.choice((0, 1, 1, 1, 2) if kind != "assigned" else (0, 0, 1, 2))):
                opened = when(0, 80)
                due = None if rng.random() < 0.05 else opened + timedelta(days=rng.randrange(1, 40))
                closed = None if rng.random() < 0.35 else opened + timedelta(days=rng.randrange(0, 50))
                stages.append((kind, opened, due, closed))
        expired = rng.random() < 0.3
        graded = not expired and rng.random() < 0.5
        closed = rng.random() < 0.5
        sup_on.case(rng.choice(regions), stages=stages, registered_at=when(0, 80),
                    legal_litigation=rng.random() < 0.1, evaluation_expired=expired,
                    evaluation_grade=rng.choice(("满意", "基本满意", "不满意")) if graded else None,
                    evaluated_at=when(20, 90) if graded else None,
                    channel=rng.choice(("来访", "来信", "网上信访")), cross_level=rng.random() < 0.3,
                    repeat_of="pet000001" if rng.random() < 0.2 else None,
                    statutory_type=rng.choice(("申诉求决类", "检举控告类", "建议意见类")),
                    closed_at=when(10, 90) if closed else None,
                    resolution=rng.choice(("resolved", "replied")) if closed else None,
                    truth=rng.choice(("属实", "部分属实", "不属实", None)) if closed else None)
    with sup_on.runtime.sessions() as s:
        multi = s.scalar(select(CaseView).where(CaseView.deadline_rows.is_(True)).limit(1))
        assert multi is not None and multi.acceptance_due_at is None
        for month, as_of in (("2026-09", None), ("2026-10", None), ("2026-11", bj(2026, 11, 2))):
            start, end = month_bounds(month, "Asia/Shanghai")
            as_of = as_of or end
            fast, joined = month_counts(s, start, end, as_of), month_counts_joined(s, start, end, as_of)
            assert _nonzero(fast) == _nonzero(joined), month
            assert _nonzero(month_counts_slots(s, start, end, as_of)) == _nonzero(joined), month
            for name in ("handling_due", "closed", "substantiated", "cross_level_visits", "evaluation_expired"):
                assert sum(c[name] for c in fast.values()) > 0, (month, name)
        # The facts the flushes kept are those a full recomputation gives.
        kept = _facts(s)
        assert facts.rebuild_all(s, chunk=7) == len(kept) > 0  # streamed in several parts
        assert _facts(s) == kept


def _nonzero(counts: dict) -> dict:
    """Prefixes with some count (a prefix whose only case counts nowhere in the month may or may not be listed)."""
    return {prefix: c for prefix, c in counts.items() if any(c.values())}


def _facts(s) -> dict:
    table = ScoreFact.__table__
    return {(r.petition_id, r.month): tuple(r) for r in s.execute(select(table))}


def test_the_facts_follow_the_projection_a_sweep_and_a_rebuild(proj_on):
    """Cases fed through the projection (actions, a reroute's second 受理告知, an expired evaluation window
    marked by the overdue sweep's UPDATE): the month's counts from the facts equal the former join, also
    after the admin rebuild."""
    sv = proj_on
    closing = sv.new_case()[0]
    sv.act(closing, "sign", status="已签收待办理", stages=[stage("acceptance_notice", day(15))])
    advance(days=2)
    sv.act(closing, "accept", stages=[stage("handling", day(20))])
    advance(days=25)  # 办理 closed late, then an evaluation window that expires unanswered
    sv.act(closing, "sign_off", status="已办结", stages=[stage("evaluation", day(28))])
    rerouted = sv.new_case()[0]
    sv.act(rerouted, "sign", status="已签收待办理", stages=[stage("acceptance_notice", day(40))])
    sv.act(rerouted, "sign", status="已签收待办理", stages=[stage("acceptance_notice", day(50))])
    open_late = sv.new_case()[0]
    sv.act(open_late, "accept", stages=[stage("handling", day(29))])
    advance(days=10)
    sv.sweep("overdue")
    with sv.runtime.sessions() as s:
        assert s.get(CaseView, closing).evaluation_expired is True

    def same() -> dict:
        with sv.runtime.sessions() as s:
            out = {}
            for month in ("2026-03", "2026-04"):
                start, end = month_bounds(month, "Asia/Shanghai")
                fast = _nonzero(month_counts(s, start, end, end))
                assert fast == _nonzero(month_counts_joined(s, start, end, end)), month
                out[month] = fast
            return out

    before = same()
    march = Counter()
    for counts in before["2026-03"].values():
        march.update(counts)
    assert march["petitions"] == 3 and march["closed_late"] == 1 and march["evaluation_expired"] == 1
    assert march["open_overdue"] == 1
    r = sv.client.post("/supervise/api/v1/admin/rebuild", headers=sv.headers(role="admin"))
    assert r.status_code == 200, r.json
    assert same() == before
