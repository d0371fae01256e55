"""case.action_recorded folded in the case's order (at, seq), whatever the delivery order.

assign records several actions of one case at one instant (受理 + 送达受理告知书, the two 满意度评价,
the 逐级审签 sign-offs of which the last closes the case); Dramatiq delivers them on several threads
with retries, in any order.  The case view (state, closure, leader, particulars) and its stage rows must
end where in-order delivery ends, and a rebuild (replaying the stored actions by arrival) gives the same.
"""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select

from shared.contracts import CaseActionRecorded
from supervise_svc import service
from supervise_svc.models import CaseStageView, CaseView
from tests.supervise.conftest import START, stage

H = timedelta(hours=1)
D = timedelta(days=1)
ACCEPTANCE = [stage("acceptance_notice", START + 6 * D), stage("objection", START + 6 * D),
              stage("assigned", START + 60 * D)]
HANDLING = [stage("assigned", START + 60 * D), stage("handling", START + 60 * D)]
SERVED = [stage("evaluation", START + 16 * D), stage("review_request", START + 30 * D)]
REVIEW = [stage("review_request", START + 30 * D)]
OLD, NEW = "411302001000-p3", "411302001000-p2"
OPINION = {"outcome": "支持", "truth": "部分属实", "commitments": [{"content": "修复外墙", "due_date": "2026-03-20"}]}
#: (seq, time, action, status, leader, data, open stages after it): a case's actions as assign records
#: them (assign_svc/timeline.py), several at one instant.
TIMELINE = [
    (1, START, "assign", "待签收", OLD, {}, ACCEPTANCE),
    (2, START + H, "sign", "已签收待办理", OLD, {}, ACCEPTANCE),
    (3, START + H, "assign_leader", "已签收待办理", NEW, {"leader_id": NEW, "leader_name": "金建国"}, ACCEPTANCE),
    (4, START + 2 * H, "accept", "已受理待送达", NEW, {}, HANDLING),
    (5, START + 2 * H, "serve", "办理中", NEW, {"method": "邮寄送达"}, HANDLING),
    (6, START + D, "issue_opinion", "已处理待送达", NEW, OPINION, []),
    (7, START + D + H, "serve", "已送达待评价", NEW, {"method": "直接送达"}, SERVED),
    (8, START + 2 * D, "evaluate", "已送达待评价", NEW, {"target": "petition_dept", "grade": "满意"}, SERVED),
    (9, START + 2 * D, "evaluate", "已送达待评价", NEW, {"target": "handling_unit", "grade": "基本满意"}, REVIEW),
    (10, START + 2 * D + H, "submit_closure", "已送达待评价", NEW, {"perfunctory": False, "failed": []}, REVIEW),
    (11, START + 2 * D + 2 * H, "sign_off", "已送达待评价", NEW, {"opinion": "同意"}, REVIEW),
    (12, START + 2 * D + 2 * H, "sign_off", "已送达待评价", NEW, {"opinion": "同意"}, REVIEW),
    (13, START + 2 * D + 2 * H, "sign_off", "已办结", NEW, {"resolution": "resolved"}, REVIEW),
]


def events(sv, pid: str) -> list[tuple[str, CaseActionRecorded]]:
    case = sv.cases[pid]
    previous = ""
    out = []
    for seq, at, action, status, leader, data, stages in TIMELINE:
        out.append((uuid.uuid4().hex, CaseActionRecorded(
            case_id=case["case_id"], petition_id=pid, display_no=case["display_no"], unit_id=case["unit_id"],
            region_code=case["region_code"], action=action, label=action, status=status, previous_status=previous,
            at=at, actor="承办人", actor_role="handler", leader_id=leader, data=dict(data), stages=list(stages),
            seq=seq)))
        previous = status
    return out


def deliver(sv, batch) -> None:
    for event_id, event in batch:  # one transaction per message, as the actor applies them
        with sv.runtime.uow() as s:
            service.project_case_action(s, event, event_id, runtime=sv.runtime, tz=sv.settings.timezone)


ORDERS = ("in order", "groups reversed", "groups shuffled 0", "groups shuffled 1", "groups shuffled 2")


def orders(batch: list, seed: int) -> dict[str, list]:
    """Groups of one instant in time order; inside each: in order, reversed, shuffled."""
    rng = random.Random(seed)
    groups: dict[datetime, list] = {}
    for item in batch:
        groups.setdefault(item[1].at, []).append(item)
    out = {"in order": list(batch), "groups reversed": [e for g in groups.values() for e in reversed(g)]}
    for i in range(3):  # the same permutations for each case (one seed)
        out[f"groups shuffled {i}"] = [e for g in groups.values() for e in rng.sample(g, len(g))]
    return out


def snapshot(sv) -> dict:
    """Each case's view (all columns) and stage rows, keyed by the order's name (the petition's display no)."""
    skip = {"petition_id", "case_id", "display_no"}
    with sv.runtime.sessions() as s:
        views = {v.display_no: {c.key: getattr(v, c.key) for c in CaseView.__table__.columns if c.key not in skip}
                 for v in s.scalars(select(CaseView))}
        case_no = {v.case_id: v.display_no for v in s.scalars(select(CaseView))}
        stages: dict[str, list] = {}
        for st in s.scalars(select(CaseStageView)):
            stages.setdefault(case_no[st.case_id], []).append(
                (st.kind, st.opened_at, st.due_at, st.warn_at, st.paused, st.closed_at, st.unit_id, st.deadline_rows))
    return {no: {"view": views[no], "stages": sorted(stages.get(no, []), key=str)} for no in views}


def test_same_instant_actions_end_as_in_order_delivery(sv_on):
    sv = sv_on
    names = {}
    for i, name in enumerate(ORDERS):
        pid = sv.register(display_no=f"4113022026030299{i:02d}")
        sv.assign(pid, leader_id=OLD)
        deliver(sv, orders(events(sv, pid), 20261122)[name])
        names[name] = sv.cases[pid]["display_no"]
    got = snapshot(sv)
    expected = got[names["in order"]]
    for name, no in names.items():
        differing = {k: (v, expected["view"][k]) for k, v in got[no]["view"].items() if v != expected["view"][k]}
        assert differing == {}, f"{name}: {sorted(differing)}"
        assert got[no]["stages"] == expected["stages"], name
    view = expected["view"]
    assert (view["case_state"], view["status"], view["closed_at"], view["resolution"]) == \
        ("已办结", "closed", START + 2 * D + 2 * H, "resolved")
    assert (view["leader_id"], view["leader_name"], view["accepted_at"], view["served_at"]) == \
        (NEW, "金建国", START + 2 * H, START + D + H)
    assert (view["evaluation_grade"], view["evaluated_at"], view["opinion_outcome"]) == \
        ("基本满意", START + 2 * D, "支持")
    assert (view["last_event_at"], view["last_event_seq"]) == (START + 2 * D + 2 * H, 13)
    assert [(k, closed) for k, _o, _d, _w, _p, closed, *_ in expected["stages"]] == [
        ("acceptance_notice", START + 2 * H), ("assigned", START + D), ("evaluation", START + 2 * D),
        ("handling", START + D), ("objection", START + 2 * H), ("review_request", None)]
    # a rebuild replays the stored actions by arrival and ends in the same place
    r = sv.client.post("/supervise/api/v1/admin/rebuild", headers=sv.headers(role="admin"))
    assert r.status_code == 200, r.json
    assert snapshot(sv) == got
