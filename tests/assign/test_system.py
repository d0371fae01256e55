"""assign_svc inside the embedded system: from intake's POST to supervise's copy of every action."""
from __future__ import annotations

from sqlalchemy import select

from tests.helpers import auth, petition_body, wait_for


def test_a_petition_becomes_a_case_whose_actions_reach_supervise(system):
    from supervise_svc.models import CaseAction

    # Given a petition registered at intake
    intake = system.apps["intake"].test_client()
    r = intake.post("/intake/api/v1/petitions", json=petition_body(region_code="411303", category="劳动和社会保障"),
                    headers=auth(system.settings, role="registrar", jurisdiction="411300"))
    assert r.status_code == 201, r.json
    system.settle()
    assign = system.apps["assign"].test_client()
    admin = auth(system.settings)
    [case] = assign.get("/assign/api/v1/cases", query_string={"petition_id": r.json["id"]}, headers=admin).json
    # Then it is a case at 卧龙区人社局 with its stages
    assert case["unit_id"] == "411303-rsj" and case["status"] == "待签收"
    # When the unit signs for it
    who = auth(system.settings, role="handler", unit_id="411303-rsj", jurisdiction="411303")
    assert assign.post(f"/assign/api/v1/cases/{case['id']}/actions/sign", json={}, headers=who).status_code == 200
    system.settle()

    # Then supervise holds both actions with the open stages
    def actions():
        with system.runtimes["supervise"].sessions() as s:
            return list(s.scalars(select(CaseAction).where(CaseAction.case_id == case["id"]).order_by(CaseAction.at)))

    rows = wait_for(lambda: len(actions()) == 2 and actions(), what="supervise's copy of the actions")
    assert [a.action for a in rows] == ["assign", "sign"] and rows[1].status == "已签收待办理"
    assert {s["kind"] for s in rows[1].stages} == {"acceptance_notice", "objection", "assigned"}
