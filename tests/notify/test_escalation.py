"""Acknowledgement and escalation (签收与升级) on each backend, under the frozen clock."""
from __future__ import annotations

from datetime import timedelta

from notify_svc import links
from notify_svc.models import Notice, NotificationEscalation
from shared import clock
from shared.contracts.findings import FindingChanged
from tests.notify.conftest import MONDAY, advance, beijing, freeze


def _steps(notify, notice_id):
    return [(e.step, e.to_id) for e in notify.rows(NotificationEscalation, NotificationEscalation.notice_id == notice_id,
                                                   order=NotificationEscalation.escalated_at)]


def test_unacknowledged_notice_escalates_to_the_superior_then_the_upper_petition_department(notify_on):
    notify = notify_on
    # Given an assignment notice to 宛城区住建局 on Monday 10:00 (ack deadline: 1 working day)
    notice = notify.request("assignment")
    assert notice.ack_due_at == beijing(2025, 9, 23, 10)
    assert notify.sweep()["escalated"] == 0
    # When the deadline passes: the recipient is reminded
    freeze(beijing(2025, 9, 23, 10))
    assert notify.sweep()["escalated"] == 1
    assert _steps(notify, notice.id) == [("remind", "411302-zjj")]
    # 4 hours later: the superior = head of the parent unit (宛城区人民政府 区长 薛亮)
    freeze(beijing(2025, 9, 23, 13, 59))
    assert notify.sweep()["escalated"] == 0
    freeze(beijing(2025, 9, 23, 14))
    assert notify.sweep()["escalated"] == 1
    assert _steps(notify, notice.id)[-1] == ("superior", "411302-gov-p2")
    [to_head] = notify.rows(Notice, Notice.recipient_id == "411302-gov-p2")
    assert to_head.notice_type == "unacknowledged" and "宛城区住房和城乡建设局" in to_head.body
    # 24 hours after the deadline: the city's petition department (南阳市信访局)
    freeze(beijing(2025, 9, 24, 10))
    assert notify.sweep()["escalated"] == 1
    assert _steps(notify, notice.id) == [("remind", "411302-zjj"), ("superior", "411302-gov-p2"),
                                         ("upper_petition_dept", "411300-xfj")]
    events = notify.outbox("notice.escalated")
    assert [(e["step"], e["to_id"], e["notice_id"]) for e in events] == [
        ("remind", "411302-zjj", notice.id), ("superior", "411302-gov-p2", notice.id),
        ("upper_petition_dept", "411300-xfj", notice.id)]
    # the chain has ended
    freeze(beijing(2025, 9, 30, 10))
    assert notify.sweep()["escalated"] == 0


def test_a_person_escalates_to_the_head_of_their_unit(notify_on):
    notify = notify_on
    notice = notify.request("extension_pending", recipient_kind="person", recipient_id="411302-zjj-p5",
                            recipient_name="傅建国")
    freeze(notice.ack_due_at + timedelta(hours=4))
    notify.sweep()
    assert _steps(notify, notice.id) == [("remind", "411302-zjj-p5"), ("superior", "411302-zjj-p2")]


def test_acknowledging_stops_the_chain(notify_on):
    notify = notify_on
    notice = notify.request("assignment")
    freeze(beijing(2025, 9, 23, 10))
    notify.sweep()
    # the unit acknowledges after the reminder
    r = notify.client.post(f"/notify/api/v1/notices/{notice.id}/ack",
                           headers=notify.headers(role="handler", unit_id="411302-zjj", jurisdiction="411302"))
    assert r.status_code == 200 and r.json["ack_via"] == "api"
    freeze(beijing(2025, 9, 25, 10))
    assert notify.sweep()["escalated"] == 0
    assert _steps(notify, notice.id) == [("remind", "411302-zjj")]
    [ack] = notify.outbox("notice.acknowledged")
    assert ack["notice_id"] == notice.id and ack["unit_id"] == "411302-zjj" and ack["via"] == "api"
    assert ack["acknowledged_at"] == "2025-09-23T02:00:00+00:00"
    # acknowledging again keeps the first time and emits nothing more
    notify.client.post(f"/notify/api/v1/notices/{notice.id}/ack",
                       headers=notify.headers(role="handler", unit_id="411302-zjj", jurisdiction="411302"))
    assert len(notify.outbox("notice.acknowledged")) == 1


def test_acknowledged_notice_whose_finding_stays_open_renotifies(notify_on):
    notify = notify_on
    finding = FindingChanged(finding_id="f-1", finding_no="DC2025-0001", rule="overdue", subject_kind="case",
                             subject_id="case-1", unit_id="411302-zjj", region_code="411302", status="open",
                             rung="supervision_order", changed_at=clock.now())
    notify.consume("notify.finding_changed", finding)
    notice = notify.request("supervision_order", subject_id="f-1", context={"region_code": "411302"})
    headers = notify.headers(role="handler", unit_id="411302-zjj", jurisdiction="411302")
    assert notify.client.post(f"/notify/api/v1/notices/{notice.id}/ack", headers=headers).status_code == 200
    freeze(MONDAY + timedelta(hours=71))
    assert notify.sweep()["renotified"] == 0
    freeze(MONDAY + timedelta(hours=72))
    assert notify.sweep()["renotified"] == 1
    assert _steps(notify, notice.id) == [("renotify", "411302-zjj")]
    [again] = notify.rows(Notice, Notice.notice_type == "renotify")
    assert again.title == "再次提醒：督办通知：DC2026-0001" and "仍未办结" in again.body
    assert notify.outbox("notice.escalated")[-1]["step"] == "renotify"
    # the finding is closed: no more re-notification
    notify.consume("notify.finding_changed", FindingChanged(**{**finding.__dict__, "status": "closed",
                                                             "changed_at": clock.now()}))
    freeze(MONDAY + timedelta(hours=150))
    assert notify.sweep()["renotified"] == 0
    # an older message arriving late does not reopen it
    notify.consume("notify.finding_changed", finding)
    freeze(MONDAY + timedelta(hours=300))
    assert notify.sweep()["renotified"] == 0


def test_ack_link_forged_or_expired_is_rejected_with_a_chinese_page(notify):
    notice = notify.request("assignment")
    token = links.make_token(notify.cfg, notice.id, clock.now())
    nid, exp, mac = token.split(".")
    forged = notify.client.get(f"/notify/ack/{nid}.{int(exp) + 86400}.{mac}")
    assert forged.status_code == 403 and "链接无效" in forged.get_data(as_text=True)
    other = notify.client.get(f"/notify/ack/{'0' * 32}.{exp}.{mac}")
    assert other.status_code == 403
    assert notify.client.post("/notify/ack", data={"token": f"{nid}.{int(exp) + 86400}.{mac}"}).status_code == 403
    advance(hours=169)
    expired = notify.client.get(f"/notify/ack/{token}")
    assert expired.status_code == 410 and "链接已过期" in expired.get_data(as_text=True)
    assert notify.client.post("/notify/ack", data={"token": token}).status_code == 410
    [row] = notify.rows(Notice, Notice.id == notice.id)
    assert row.acknowledged_at is None


def test_another_persons_notice_is_403(notify):
    from tests.notify.conftest import directory_records

    [person] = [p for p in directory_records()[1] if p["id"] == "411302-gov-p2"]
    notify.directory(people=[{**person, "username": "411302-gov-p2"}])  # the directory's username of 薛亮
    notice = notify.request("ownership", recipient_kind="person", recipient_id="411302-gov-p2", recipient_name="薛亮")
    other = notify.headers(role="leader", username="411302-gov-p1", jurisdiction="411302")
    assert notify.client.post(f"/notify/api/v1/notices/{notice.id}/ack", headers=other).status_code == 403
    assert notify.client.get(f"/notify/api/v1/notices/{notice.id}", headers=other).status_code == 403
    unit_staff = notify.headers(role="handler", unit_id="411302-zjj", jurisdiction="411302")
    assert notify.client.post(f"/notify/api/v1/notices/{notice.id}/ack", headers=unit_staff).status_code == 403
    me = notify.headers(role="leader", username="411302-gov-p2", jurisdiction="411302")
    assert notify.client.post(f"/notify/api/v1/notices/{notice.id}/ack", headers=me).status_code == 200


def test_unknown_recipient_is_recorded_and_operators_alerted(notify):
    notice = notify.request("urge", recipient_id="411302-nosuch", recipient_name="不存在的单位",
                            context={"region_code": "411302"})
    assert notice is not None and notice.status == "error"
    assert notice.error == "收件人不在目录中：unit 411302-nosuch"
    assert notice.title == "催办通知：DC2026-0001" and notice.next_escalation_at is None
    [alert] = notify.rows(Notice, Notice.notice_type == "operator_alert")
    assert alert.recipient_id == "411302-xfj" and alert.subject_id == notice.id
    assert "收件人不在目录中" in alert.body


def test_template_failing_at_send_time_still_records_the_notice(notify):
    notice = notify.request("interview", context={"scheduled_at": "not a time"}, dedupe_key="interview:bad")
    assert notice.status == "error" and notice.error.startswith("模板渲染失败")
    assert notice.title == "约谈通知（内容生成失败）"
    assert len(notify.rows(Notice, Notice.notice_type == "operator_alert")) == 1
