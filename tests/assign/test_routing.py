"""Routing (属地 + 归口) as ordered, editable, versioned rules; leader ownership (领导包案)."""
from __future__ import annotations

import pytest

from assign_svc.domain.categories import normalize
from assign_svc.domain.routing import PetitionFacts, RoutingRule, UnitInfo, route


@pytest.mark.parametrize("overrides,unit,mode", [
    ({}, "411302-zjj", "assign"),  # 城乡建设 in 宛城区: the county's housing bureau (归口)
    ({"category": "03"}, "411302-zjj", "assign"),  # a category code is accepted
    ({"category": "0301"}, "411302-zjj", "assign"),  # a hierarchical code: its first level
    ({"category": "生态环境"}, "411302-sthjj", "assign"),  # the newer name folds into 环境保护
    ({"region_code": "411302103000", "category": "农村农业"}, "411302103000", "assign"),  # 属地: 瓦店镇
    ({"region_code": "411302103000", "category": "城乡建设"}, "411302-zjj", "assign"),  # township code, bureau topic
    ({"statutory_type": "检举控告类", "category": "城乡建设"}, "411302-jw", "forward"),
    ({"purpose": "检举控告"}, "411302-jw", "forward"),
    ({"legal_litigation": True}, "411302-zfw", "divert"),
    ({"region_code": "411381", "category": "劳动和社会保障"}, "411381-rsj", "assign"),  # 邓州市
    ({"category": "不存在的分类"}, "411302-xfj", "assign"),  # no competent bureau: the petition department
])
def test_petitions_route_by_the_first_matching_rule(assign, overrides, unit, mode):
    # Given the shipped rules and the Nanyang demo directory
    # When a petition is registered
    case = assign.case(assign.register(**overrides))
    # Then it lands at the expected unit, in the expected mode, with the rule that chose it recorded
    assert (case["unit_id"], case["mode"]) == (unit, mode)
    assert case["routing_rule_id"] and case["routing_version"] >= 1 and case["directory_version"] >= 1
    assert case["registered_by"] == "wancheng-xf" and case["assigned_by"].startswith("规则：")


def test_legal_litigation_leaves_the_petition_clock(assign):
    # Given a 涉法涉诉 petition
    case = assign.case(assign.register(legal_litigation=True))
    # Then it is diverted to the political-legal committee without any petition stage
    assert case["in_clock"] is False and case["stages"] == []
    assert "不计入信访办理期限" in case["deadline_basis"]
    assert assign.outbox("case.assigned")[-1]["payload"]["in_clock"] is False


def test_leader_ownership_by_rule_and_the_ownership_notice(assign):
    # Given a group visit (7 people) and a plain petition
    group = assign.case(assign.register(people_count=7))
    plain = assign.case(assign.register())
    # Then the group visit is owned by the county head (区长) and the plain one by nobody
    assert group["leader_id"] == "411302-gov-p2" and "集体访" in group["leader_basis"]
    assert plain["leader_id"] is None
    # And the leader gets a 包案通知 beside the unit's 交办通知
    notices = [m["payload"] for m in assign.outbox("notice.requested") if m["payload"]["subject_id"] == group["id"]]
    assert sorted((n["notice_type"], n["recipient_id"]) for n in notices) == [
        ("assignment", "411302-zjj"), ("ownership", "411302-gov-p2")]


def test_leader_can_be_assigned_by_hand(assign):
    case_id = assign.register()
    r = assign.act(case_id, "assign_leader", {"leader_id": "411302-gov-p3", "reason": "疑难复杂"},
                   role="registrar", jurisdiction="411302")
    assert r.status_code == 200 and r.json["leader_id"] == "411302-gov-p3"
    r = assign.act(case_id, "assign_leader", {"leader_id": "411302-zjj-p5"}, role="registrar", jurisdiction="411302")
    assert r.status_code == 422  # a handler (承办人) is not a leader


def test_a_rule_edit_is_a_new_version_and_routes_new_petitions(assign):
    # Given housing petitions go to the housing bureau
    assert assign.case(assign.register())["unit_id"] == "411302-zjj"
    before = assign.client.get("/assign/api/v1/admin/versions/routing", headers=assign.admin()).json[0]["version"]
    # When an admin adds a higher-priority rule sending 宛城区 housing petitions to the township of 新华街道
    rule = {"priority": 40, "name": "试点：城乡建设交新华街道", "when": {"categories": ["城乡建设"], "region_prefix": "411302"},
            "target": {"strategy": "unit", "unit_id": "411302001000"}, "mode": "forward"}
    r = assign.client.put("/assign/api/v1/admin/routing-rules/pilot", json=rule, headers=assign.admin())
    assert r.status_code == 200 and r.json["version"] == before + 1
    # Then new petitions follow it and record the version they were routed with
    case = assign.case(assign.register())
    assert (case["unit_id"], case["mode"], case["routing_rule_id"], case["routing_version"]) == (
        "411302001000", "forward", "pilot", before + 1)
    # And a broken rule is refused with field errors
    bad = assign.client.put("/assign/api/v1/admin/routing-rules/bad", json={**rule, "mode": "mail"},
                            headers=assign.admin())
    assert bad.status_code == 422 and "mode" in str(bad.json["errors"])


def test_route_falls_through_a_rule_whose_target_finds_no_unit():
    units = [UnitInfo("x-xfj", "某信访局", "petition_dept", "county", "419999")]
    rules = [RoutingRule("competent", 100, "归口", target={"strategy": "competent"}),
             RoutingRule("fallback", 1000, "兜底", target={"strategy": "fallback"})]
    decision = route(rules, units, PetitionFacts(region_code="419999", category="城乡建设"))
    assert (decision.unit.id, decision.rule.id) == ("x-xfj", "fallback")


@pytest.mark.parametrize("raw,name", [("城乡建设", "城乡建设"), ("03", "城乡建设"), ("16", "纪检监察"),
                                      ("自然资源", "国土资源"), ("农村农业/扶贫", "农村农业"), ("新类目", "新类目")])
def test_categories_accept_names_and_codes(raw, name):
    assert normalize(raw) == name
