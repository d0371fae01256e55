"""Two conflicting actions on one case at the same moment: one wins, the other gets 409, nothing corrupt."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from assign_svc.models import CaseEvent, CaseStage


def test_concurrent_conflicting_actions_one_wins_the_other_is_409(assign_on):
    assign = assign_on
    case_id = assign.register()
    who = assign.unit("411302-zjj")
    assert assign.act(case_id, "sign", **who).status_code == 200
    # Given two staff of the unit acting at once: one accepts, the other objects
    bodies = {"accept": {}, "object": {"reason": "不属于本单位职责"}}
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def run(action: str) -> None:
        client = assign.app.test_client()
        headers = assign.headers(**who)
        barrier.wait()
        r = client.post(f"/assign/api/v1/cases/{case_id}/actions/{action}", json=bodies[action], headers=headers)
        results[action] = r.status_code

    threads = [threading.Thread(target=run, args=(a,)) for a in bodies]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Then exactly one succeeds and the other gets 409
    assert sorted(results.values()) == [200, 409], results
    winner = next(a for a, code in results.items() if code == 200)
    case = assign.case(case_id)
    assert case["status"] == {"accept": "已受理待送达", "object": "退回"}[winner]
    # And the case holds one consistent story: one event for the winner, stages closed once
    with assign.runtime.sessions() as s:
        actions = list(s.scalars(select(CaseEvent.action).where(CaseEvent.case_id == case_id).order_by(CaseEvent.seq)))
        open_handling = s.scalar(select(func.count()).select_from(CaseStage).where(
            CaseStage.case_id == case_id, CaseStage.kind == "handling", CaseStage.closed_at.is_(None)))
    assert actions == ["assign", "sign", winner]
    assert open_handling == (1 if winner == "accept" else 0)
    changes = [m["payload"]["status"] for m in assign.outbox("case.status_changed")
               if m["payload"]["case_id"] == case_id]
    assert changes == ["待签收", "已签收待办理", case["status"]]
