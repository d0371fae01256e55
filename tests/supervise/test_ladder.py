"""The ladder (督办阶梯): climbing by time up to 约谈, repeated findings, the interview and its notices,
overdue rectification items, manual climb and hold."""
from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import select

from supervise_svc.models import Escalation, Finding, Interview
from tests.supervise.conftest import START, advance, freeze, stage


def _overdue_finding(sv) -> Finding:
    pid, _ = sv.new_case()
    sv.act(pid, "accept", stages=[stage("handling", START + timedelta(days=1))])
    freeze(START + timedelta(days=1, minutes=1))
    sv.sweep("overdue")
    [f] = sv.findings()
    return f


def test_climbs_one_rung_per_five_days_up_to_an_interview(sv_on):
    sv = sv_on
    f = _overdue_finding(sv)
    # Given the overdue policy: climb after 5 days at a rung, time alone climbs no higher than 约谈
    rungs = []
    for _ in range(6):
        advance(days=5)
        sv.sweep("ladder")
        [f] = sv.findings()
        rungs.append(f.rung)
    assert rungs == ["supervision_order", "bulletin", "warning", "interview", "interview", "interview"]
    with sv.runtime.sessions() as s:
        escalations = list(s.scalars(select(Escalation).order_by(Escalation.id)))
        interview = s.scalar(select(Interview))
    assert [(e.rung, e.decided_by) for e in escalations] == [
        ("urge", "rule:first_rung_overdue"), ("supervision_order", "rule:time"), ("bulletin", "rule:time"),
        ("warning", "rule:time"), ("interview", "rule:time")]
    # the interview is a draft with the people called in resolved from the directory
    assert (interview.status, interview.finding_id, interview.convening_body, interview.chair) == \
        ("draft", f.id, "宛城区信访局", "韩海燕")
    detail = sv.client.get(f"/supervise/api/v1/interviews/{interview.id}", headers=sv.headers()).json
    assert [(p["name"], p["unit_name"]) for p in detail["interviewees"]] == [
        ("王霞", "东关街道"), ("郭超", "宛城区信访局"), ("何淑珍", "宛城区人民政府")]
    # notices per rung; at 约谈 only the petition department is told before scheduling
    by_rung = {}
    for n in sv.notices(f.id):
        by_rung.setdefault(n["notice_type"], set()).add(n["recipient_id"])
    assert by_rung["warning"] == {"411302001000-p2", "411302001000-p3", "411302-xfj"}
    assert by_rung["interview"] == {"411302-xfj"}
    # When the supervisor schedules it
    at = (START + timedelta(days=30)).isoformat()
    r = sv.client.post(f"/supervise/api/v1/interviews/{interview.id}/schedule", headers=sv.headers(),
                       json={"scheduled_at": at, "place": "区信访局三楼会议室"})
    assert r.status_code == 200, r.json
    assert r.json["status"] == "scheduled"
    invited = [n for n in sv.notices(f.id) if n["notice_type"] == "interview" and n["recipient_kind"] == "person"]
    assert sorted(n["recipient_id"] for n in invited) == ["411302-gov-p3", "411302-xfj-p4", "411302001000-p1"]
    ctx = invited[0]["context"]
    assert (ctx["interview_no"], ctx["scheduled_at"], ctx["place"], ctx["convening_body"], ctx["chair"]) == \
        (interview.interview_no, at, "区信访局三楼会议室", "宛城区信访局", "韩海燕")
    assert ctx["finding_no"] == f.finding_no and ctx["rung_label"] == "约谈"


def test_repeated_findings_on_a_unit_start_at_bulletin(sv):
    cases = [sv.new_case() for _ in range(3)]
    for pid, _ in cases:
        sv.act(pid, "evaluate", data={"target": "handling_unit", "grade": "不满意"})
    findings = sv.findings()
    assert [f.rung for f in findings] == ["urge", "urge", "bulletin"]
    with sv.runtime.sessions() as s:
        e = s.scalar(select(Escalation).where(Escalation.finding_id == findings[2].id))
    assert e.decided_by == "rule:repeat_unit"


def test_manual_climb_hold_and_release(sv):
    f = _overdue_finding(sv)
    url = f"/supervise/api/v1/findings/{f.id}/actions"
    r = sv.client.post(f"{url}/climb", headers=sv.headers(username="督查员甲"), json={})
    assert r.status_code == 422 and "reason" in r.json["errors"]["json"]
    r = sv.client.post(f"{url}/climb", headers=sv.headers(username="督查员甲"),
                       json={"reason": "群众反映强烈", "rung": "warning"})
    assert r.status_code == 200, r.json
    assert r.json["rung"] == "warning"
    assert r.json["escalations"][-1] == {"rung": "warning", "cycle_no": 1, "decided_by": "督查员甲",
                                         "at": r.json["escalations"][-1]["at"], "reason": "群众反映强烈"}
    r = sv.client.post(f"{url}/climb", headers=sv.headers(), json={"reason": "x", "rung": "urge"})
    assert r.status_code == 422
    assert sv.client.post(f"{url}/hold", headers=sv.headers(), json={"reason": "已约定整改方案"}).status_code == 200
    advance(days=30)
    assert sv.sweep("ladder")["ladder"]["climbed"] == 0
    assert sv.client.post(f"{url}/release", headers=sv.headers(), json={}).status_code == 200
    advance(days=5)
    assert sv.sweep("ladder")["ladder"]["climbed"] == 1
    assert sv.findings()[0].rung == "interview"


def test_interview_record_items_and_documents(sv):
    from docx import Document

    f = _overdue_finding(sv)
    r = sv.client.post("/supervise/api/v1/interviews", headers=sv.headers(), json={"finding_id": f.id})
    assert r.status_code == 201, r.json
    iid = r.json["id"]
    base = f"/supervise/api/v1/interviews/{iid}"
    # scheduling without time and place is refused, naming the fields; nothing changes
    r = sv.client.post(f"{base}/schedule", headers=sv.headers(), json={})
    assert r.status_code == 422 and set(r.json["errors"]["json"]) == {"scheduled_at", "place"}
    assert sv.client.get(base, headers=sv.headers()).json["status"] == "draft"
    # recording a draft is not allowed
    r = sv.client.post(f"{base}/record", headers=sv.headers(), json={"problems": "x"})
    assert r.status_code == 409 and r.json["errors"]["allowed_actions"] == ["edit", "schedule"]
    sv.client.post(f"{base}/schedule", headers=sv.headers(),
                   json={"scheduled_at": (START + timedelta(days=3)).isoformat(), "place": "区信访局"})
    people = sv.client.get(base, headers=sv.headers()).json["interviewees"]
    r = sv.client.post(f"{base}/record", headers=sv.headers(), json={
        "problems": "办理超期，群众反映强烈", "recorder": "赵敏", "attendees": ["区纪委监委 陈爱军"],
        "statements": [{"interviewee_id": people[0]["id"], "statement": "十日内办结"}]})
    assert r.status_code == 200 and r.json["status"] == "held"
    r = sv.client.post(f"{base}/items", headers=sv.headers(), json={
        "content": "十日内出具处理意见书", "owner_person_id": "411302001000-p1",
        "due_at": (START + timedelta(days=11)).isoformat()})
    assert r.status_code == 201, r.json
    item_id = r.json["items"][0]["id"]
    [rect] = [n for n in sv.notices(f.id) if n["notice_type"] == "rectification"]
    assert (rect["recipient_id"], rect["context"]["item_content"]) == ("411302001000-p1", "十日内出具处理意见书")
    # an item past its deadline, not verified, climbs the finding once
    freeze(START + timedelta(days=11, minutes=1))
    before = sv.findings()[0].rung
    assert sv.sweep("items")["items"]["climbed"] == 1
    assert sv.sweep("items")["items"]["climbed"] == 0
    assert (before, sv.findings()[0].rung) == ("urge", "supervision_order")
    # closing needs every item verified
    assert sv.client.post(f"{base}/close", headers=sv.headers()).status_code == 409
    r = sv.client.post(f"{base}/items/{item_id}/verify", headers=sv.headers(), json={"note": "已出具"})
    assert r.status_code == 200
    assert sv.client.post(f"{base}/close", headers=sv.headers()).json["status"] == "closed"
    for doc, must in (("notice", "约谈通知书"), ("record", "约谈记录")):
        r = sv.client.get(f"{base}/{doc}.docx", headers=sv.headers())
        assert r.status_code == 200 and r.mimetype.endswith("wordprocessingml.document")
        text = "\n".join(p.text for p in Document(io.BytesIO(r.data)).paragraphs)
        assert must in text and "王霞" in text
        if doc == "record":
            assert "十日内办结" in text and "十日内出具处理意见书" in text and "赵敏" in text


def test_yellow_lagging_finding_opens_at_interview(sv_on):
    from shared import clock
    from supervise_svc.findings import open_finding

    sv = sv_on
    with sv.runtime.uow() as s:
        f = open_finding(s, sv.runtime, rule="lagging", subject_kind="unit", subject_id="411302001000", cycle="2026-02",
                         unit_id="411302001000", region_code="411302001000",
                         evidence={"colour": "yellow", "colour_label": "黄色警告", "text": "连续两个月排名靠后"},
                         detected_at=clock.now(), initial_rung="interview", reason="工作被动落后")
        again = open_finding(s, sv.runtime, rule="lagging", subject_kind="unit", subject_id="411302001000",
                             cycle="2026-02", unit_id="411302001000", region_code="411302001000", evidence={},
                             detected_at=clock.now(), initial_rung="interview")
        fid = f.id
    assert again is None
    with sv.runtime.sessions() as s:
        interview = s.scalar(select(Interview).where(Interview.finding_id == fid))
        rungs = list(s.scalars(select(Escalation.decided_by).where(Escalation.finding_id == fid)))
    assert (interview.status, interview.trigger["colour"], rungs) == ("draft", "黄色警告", ["rule:initial"])
    detail = sv.client.get(f"/supervise/api/v1/interviews/{interview.id}", headers=sv.headers()).json
    assert [p["person_id"] for p in detail["interviewees"]] == ["411302001000-p1", "411302-xfj-p4", "411302-gov-p3"]
