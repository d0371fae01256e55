"""The findings API: lifecycle (409 on illegal moves), jurisdiction, acknowledgements, the ladder policy."""
from __future__ import annotations

from datetime import timedelta

from shared import clock
from shared.contracts import NoticeAcknowledged, NoticeEscalated
from supervise_svc import ladder
from tests.supervise.conftest import START, freeze, stage


def _finding(sv):
    pid, _ = sv.new_case()
    sv.act(pid, "evaluate", data={"target": "handling_unit", "grade": "不满意"})
    [f] = sv.findings()
    return f


def test_lifecycle_with_illegal_transitions(sv_on):
    sv = sv_on
    f = _finding(sv)
    url = f"/supervise/api/v1/findings/{f.id}/actions"
    h = sv.headers(username="督查员甲")
    r = sv.client.post(f"{url}/verify", headers=h, json={})
    assert r.status_code == 409
    assert r.json["errors"]["allowed_actions"] == ["start_rectifying", "submit_rectification", "climb", "hold",
                                                   "release"]
    assert sv.client.post(f"{url}/start_rectifying", headers=h, json={}).json["status"] == "rectifying"
    r = sv.client.post(f"{url}/submit_rectification", headers=h, json={})
    assert r.status_code == 422 and r.json["errors"]["json"] == {"proof": ["必填"]}
    assert sv.findings()[0].status == "rectifying"  # nothing half-written
    assert sv.client.post(f"{url}/submit_rectification", headers=h,
                          json={"proof": "已上门答复并修复"}).json["status"] == "rectified"
    assert sv.client.post(f"{url}/close", headers=h, json={}).status_code == 409
    assert sv.client.post(f"{url}/verify", headers=h, json={}).json["status"] == "verified"
    r = sv.client.post(f"{url}/close", headers=h, json={})
    assert r.json["status"] == "closed" and r.json["allowed_actions"] == ["reopen"]
    assert sv.client.post(f"{url}/reopen", headers=h, json={}).status_code == 422
    r = sv.client.post(f"{url}/reopen", headers=h, json={"reason": "回访发现未落实"})
    assert (r.json["status"], r.json["cycle_no"]) == ("reopened", 2)
    assert [(e["action"], e["to_status"], e["actor"]) for e in r.json["history"]] == [
        ("open", "open", "system"), ("enter_rung", "open", "rule:first_rung_dissatisfied"),
        ("start_rectifying", "rectifying", "督查员甲"), ("submit_rectification", "rectified", "督查员甲"),
        ("verify", "verified", "督查员甲"), ("close", "closed", "督查员甲"), ("reopen", "reopened", "督查员甲")]
    statuses = [m["payload"]["status"] for m in sv.outbox("finding.changed")]
    assert statuses == ["open", "rectifying", "rectified", "verified", "closed", "reopened"]
    assert sv.client.post(f"{url}/fly", headers=h, json={}).status_code == 404


def test_jurisdiction_and_roles(sv):
    f = _finding(sv)
    other = sv.headers(jurisdiction="411303")
    assert sv.client.get(f"/supervise/api/v1/findings/{f.id}", headers=other).status_code == 403
    assert sv.client.get("/supervise/api/v1/findings", headers=other).json["total"] == 0
    assert sv.client.get("/supervise/api/v1/findings?region=411302", headers=other).status_code == 403
    city = sv.headers(jurisdiction="411300")
    assert sv.client.get("/supervise/api/v1/findings", headers=city).json["total"] == 1
    leader = sv.headers(role="leader")
    assert sv.client.get(f"/supervise/api/v1/findings/{f.id}", headers=leader).status_code == 200
    assert sv.client.post(f"/supervise/api/v1/findings/{f.id}/actions/verify", headers=leader,
                          json={}).status_code == 403
    handler = sv.headers(role="handler", unit_id="411302001000")
    assert sv.client.get("/supervise/api/v1/findings", headers=handler).status_code == 403
    r = sv.client.post(f"/supervise/api/v1/findings/{f.id}/actions/start_rectifying", headers=handler, json={})
    assert r.status_code == 200  # the unit's own staff start rectifying


def test_list_filters_and_pages(sv):
    for grade_case in range(3):
        _ = grade_case
        pid, _ = sv.new_case()
        sv.act(pid, "evaluate", data={"target": "handling_unit", "grade": "不满意"})
    pid, _ = sv.new_case()
    sv.act(pid, "submit_closure", data={"perfunctory": True, "failed": ["carried_out"]})
    h = sv.headers()
    r = sv.client.get("/supervise/api/v1/findings?rule=dissatisfied&page_size=2&page=2", headers=h)
    assert (r.json["total"], len(r.json["items"]), r.json["page"]) == (3, 1, 2)
    assert sv.client.get("/supervise/api/v1/findings?rung=bulletin", headers=h).json["total"] == 2
    assert sv.client.get("/supervise/api/v1/findings?rule=nope", headers=h).status_code == 422
    later = (START + timedelta(days=1)).isoformat().replace("+", "%2B")
    assert sv.client.get(f"/supervise/api/v1/findings?detected_from={later}", headers=h).json["total"] == 0


def test_acknowledgements_are_shown_and_unanswered_counted(sv):
    f = _finding(sv)
    notices = sv.notices(f.id)
    head = next(n for n in notices if n["recipient_id"] == "411302001000-p2")
    with sv.runtime.uow() as s:
        ladder.project_notice_acknowledged(s, NoticeAcknowledged(
            notice_id="n1", dedupe_key=head["dedupe_key"], notice_type="urge", subject_id=f.id,
            recipient_kind="person", recipient_id="411302001000-p2", unit_id="411302001000",
            acknowledged_at=clock.now()))
        dept = next(n for n in notices if n["recipient_id"] == "411302-xfj")
        ladder.project_notice_escalated(s, NoticeEscalated(
            notice_id="n2", dedupe_key=dept["dedupe_key"], notice_type="urge", subject_id=f.id, recipient_kind="unit",
            recipient_id="411302-xfj", unit_id="411302-xfj", step="remind", to_kind="unit", to_id="411302-xfj",
            to_name="宛城区信访局", escalated_at=clock.now()))
    detail = sv.client.get(f"/supervise/api/v1/findings/{f.id}", headers=sv.headers()).json
    acked = {n["recipient_id"]: n["acknowledged"] for n in detail["notices"]}
    assert acked == {"411302001000-p2": True, "411302001000-p3": False, "411302-xfj": False}
    assert next(n for n in detail["notices"] if n["recipient_id"] == "411302-xfj")["escalations"] == 1
    r = sv.client.get("/supervise/api/v1/findings/unanswered", headers=sv.headers())
    assert r.json == [{"unit_id": "411302-xfj", "unanswered": 1}, {"unit_id": "411302001000", "unanswered": 1}]


def test_ladder_policy_versions(sv):
    url = "/supervise/api/v1/admin/ladder-policy"
    r = sv.client.get(url, headers=sv.headers())
    assert r.json["version"] == 0 and r.json["policy"]["rules"]["overdue"]["climb_after_days"] == 5
    policy = r.json["policy"]
    bad = {**policy, "rules": {**policy["rules"], "overdue": {"first_rung": "shout", "climb_after_days": 0}}}
    r = sv.client.put(url, headers=sv.headers(role="admin"), json={"policy": bad})
    assert r.status_code == 422
    assert set(r.json["errors"]["json"]) == {"rules.overdue.first_rung", "rules.overdue.climb_after_days"}
    assert sv.client.put(url, headers=sv.headers(), json={"policy": policy}).status_code == 403
    good = {**policy, "rules": {**policy["rules"], "overdue": {"first_rung": "supervision_order",
                                                               "climb_after_days": 2, "rectify_days": 3}}}
    r = sv.client.put(url, headers=sv.headers(role="admin"), json={"policy": good, "note": "加快升级"})
    assert r.status_code == 200 and r.json["version"] == 1
    # the new version is in force: an overdue finding starts at 督办 and climbs after 2 days
    pid, _ = sv.new_case()
    sv.act(pid, "accept", stages=[stage("handling", START + timedelta(hours=1))])
    freeze(START + timedelta(hours=2))
    sv.sweep("overdue")
    assert sv.findings()[0].rung == "supervision_order"
    freeze(START + timedelta(days=2, hours=2))
    sv.sweep("ladder")
    assert sv.findings()[0].rung == "bulletin"
