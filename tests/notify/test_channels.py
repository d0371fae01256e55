"""Channels against real local endpoints: SMTP (aiosmtpd), an HTTP SMS gateway, a webhook receiver;
quiet hours; the SMS throttle folding into the daily digest."""
from __future__ import annotations

import re
from datetime import timedelta

from notify_svc import links
from notify_svc.escalation import digest_sweep
from notify_svc.models import Delivery, Notice
from shared import clock
from tests.notify.conftest import WEBHOOK_SECRET, advance, beijing, freeze


def _smtp(notify, smtp_server):
    notify.configure(smtp_host=smtp_server.host, smtp_port=smtp_server.port, smtp_from="xinfang@nanyang.example")


def test_email_arrives_at_the_smtp_server_with_chinese_subject_body_and_signed_link(notify, smtp_server):
    _smtp(notify, smtp_server)
    notice = notify.request("assignment", subject_id="case-1")
    assert notify.deliver() == {"sent": 1}
    [(envelope, msg)] = smtp_server.parsed()
    assert envelope.rcpt_tos == ["411302-zjj@demo.nanyang.example"]
    assert msg["From"] == "xinfang@nanyang.example"
    assert msg["To"] == "宛城区住房和城乡建设局 <411302-zjj@demo.nanyang.example>"
    assert msg["Subject"] == "交办通知：信访件 411302000000000001"
    assert msg["Message-ID"] == f"<{notice.id}@xinfang.notify>"
    body = msg.get_content()
    assert "现将信访件（编号 411302000000000001" in body and "请及时签收" in body
    token = re.search(r"/notify/ack/(\S+)", body).group(1)
    assert links.verify_token(notify.cfg, token, clock.now()) == notice.id
    assert "签收链接（打开后点击“确认签收”完成签收）" in body
    # the link works: opening it shows the confirmation page, the button acknowledges
    page = notify.client.get(f"/notify/ack/{token}")
    assert page.status_code == 200 and "确认签收" in page.get_data(as_text=True)
    [row] = notify.rows(Notice, Notice.id == notice.id)
    assert row.acknowledged_at is None
    done = notify.client.post("/notify/ack", data={"token": token})
    assert done.status_code == 200 and "签收成功" in done.get_data(as_text=True)
    [row] = notify.rows(Notice, Notice.id == notice.id)
    assert row.ack_via == "link" and row.acknowledged_at == clock.now()


def test_urgent_subject_is_marked(notify, smtp_server):
    _smtp(notify, smtp_server)
    notify.request("urge", urgency="urgent")
    notify.deliver()
    [(_, msg)] = smtp_server.parsed()
    assert msg["Subject"] == "【紧急】催办通知：DC2026-0001"


def _sms(notify, gateway, **more):
    notify.configure(sms_url=gateway.url, sms_auth_header="Authorization: Token sms-key",
                     sms_template='{"mobile": "{phone}", "content": "{text}", "ref": "{id}"}',
                     sms_success_path="result.code", sms_success_value="OK", sms_timeout=0.5,
                     retry_limit=3, retry_backoff_seconds=60, **more)


def test_sms_goes_to_the_gateway_for_urgent_notices_only(notify, sms_gateway):
    import json

    _sms(notify, sms_gateway)
    sms_gateway.script[:] = [(200, {"result": {"code": "OK"}}, 0)]
    notify.request("assignment", urgency="normal")
    urgent = notify.request("warning")  # 警示: urgent by policy
    assert notify.deliver() == {"sent": 1}
    [(headers, body)] = sms_gateway.requests
    sent = json.loads(body)
    assert headers["Authorization"] == "Token sms-key" and headers["Idempotency-Key"] == sent["ref"]
    assert sent["mobile"] == "0377-62506160" and sent["content"].startswith("【信访通知】警示通知：DC2026-0001")
    [row] = notify.rows(Delivery, Delivery.notice_id == urgent.id)
    assert (row.channel, row.status, row.attempts) == ("sms", "sent", 1)


def test_sms_gateway_failures_are_retried_with_backoff_then_given_up_with_the_reason(notify, sms_gateway):
    _sms(notify, sms_gateway)
    sms_gateway.script[:] = [(503, {"error": "busy"}, 0), (200, {"result": {"code": "OK"}}, 1.5),
                             (200, {"result": {"code": "ERR_BALANCE"}}, 0)]
    notice = notify.request("warning", context={"region_code": "411302"})
    start = clock.now()
    assert notify.deliver() == {"failed": 1}  # 1: HTTP 503
    [row] = notify.rows(Delivery, Delivery.notice_id == notice.id)
    assert row.status == "failed" and "HTTP 503" in row.last_error
    assert row.next_attempt_at == start + timedelta(seconds=60)
    assert notify.deliver() == {}  # not yet due
    advance(seconds=60)
    assert notify.deliver() == {"failed": 1}  # 2: timeout
    [row] = notify.rows(Delivery, Delivery.notice_id == notice.id)
    assert "超时" in row.last_error and row.next_attempt_at == clock.now() + timedelta(seconds=120)
    advance(seconds=120)
    assert notify.deliver() == {"gave_up": 1}  # 3: a 200 whose body says failure; limit 3 reached
    [row] = notify.rows(Delivery, Delivery.notice_id == notice.id)
    assert row.status == "gave_up" and row.attempts == 3
    assert "短信网关报告失败：result.code='ERR_BALANCE'" in row.last_error
    [n] = notify.rows(Notice, Notice.id == notice.id)
    assert n.status == "error" and "重试 3 次后放弃" in n.error
    # operators are alerted (the county's petition department) and see it in their view
    [alert] = notify.rows(Notice, Notice.notice_type == "operator_alert")
    assert alert.recipient_id == "411302-xfj" and "处理失败" in alert.body
    failed = notify.client.get("/notify/api/v1/deliveries", headers=notify.headers(role="admin")).json
    assert [d["id"] for d in failed] == [row.id] and failed[0]["status"] == "gave_up"
    assert notify.client.get("/notify/api/v1/deliveries",
                             headers=notify.headers(role="supervisor")).status_code == 403
    # the operator fixes the gateway and retries
    sms_gateway.script[:] = [(200, {"result": {"code": "OK"}}, 0)]
    r = notify.client.post(f"/notify/api/v1/deliveries/{row.id}/retry", headers=notify.headers(role="admin"))
    assert r.status_code == 200 and r.json["status"] == "pending"
    assert notify.deliver() == {"sent": 2}  # the retried SMS and the (urgent) operator alert's SMS
    assert len(sms_gateway.requests) == 5
    [row] = notify.rows(Delivery, Delivery.id == row.id)
    assert (row.status, row.attempts) == ("sent", 1)


def test_webhook_is_signed_and_the_receiver_verifies_it(notify, webhook_receiver):
    notify.configure(webhook_secret=WEBHOOK_SECRET, retry_limit=2)
    unit = {"id": "411302-zjj", "name": "宛城区住房和城乡建设局", "kind": "bureau", "level": "county",
            "region_code": "411302", "parent_id": "411302-gov",
            "contacts": {"webhook": webhook_receiver.url, "notify_channels": ["webhook"]}}
    notify.directory([unit])
    notice = notify.request("assignment")
    assert notify.deliver() == {"sent": 1}
    [payload] = webhook_receiver.accepted
    assert payload["notice_id"] == notice.id and payload["title"] == "交办通知：信访件 411302000000000001"
    # a receiver whose clock is 10 minutes ahead sees a stale timestamp and rejects it
    webhook_receiver.offset["seconds"] = 600
    second = notify.request("assignment")
    assert notify.deliver() == {"gave_up": 1}  # 401 is not retried
    [row] = notify.rows(Delivery, Delivery.notice_id == second.id)
    assert "HTTP 401" in row.last_error and len(webhook_receiver.accepted) == 1
    # a wrong secret is rejected as well
    webhook_receiver.offset["seconds"] = 0
    notify.configure(webhook_secret="not-the-secret")
    third = notify.request("assignment")
    assert notify.deliver() == {"gave_up": 1}
    [row] = notify.rows(Delivery, Delivery.notice_id == third.id)
    assert "HTTP 401" in row.last_error and len(webhook_receiver.accepted) == 1


def test_quiet_hours_delay_non_urgent_sms_until_they_end(notify, sms_gateway):
    _sms(notify, sms_gateway, sms_urgent_only=False)
    sms_gateway.script[:] = [(200, {"result": {"code": "OK"}}, 0)]
    freeze(beijing(2025, 9, 22, 23, 30))
    normal = notify.request("assignment")
    urgent = notify.request("warning")
    assert notify.deliver() == {"sent": 1}  # the urgent one, at once
    [row] = notify.rows(Delivery, Delivery.notice_id == normal.id)
    assert row.status == "deferred" and row.next_attempt_at == beijing(2025, 9, 23, 7, 0)
    freeze(beijing(2025, 9, 23, 6, 59))
    assert notify.deliver() == {}
    freeze(beijing(2025, 9, 23, 7, 0))
    assert notify.deliver() == {"sent": 1}
    assert [r.status for r in notify.rows(Delivery, Delivery.notice_id.in_([normal.id, urgent.id]))] == ["sent", "sent"]


def test_sms_throttle_folds_the_rest_into_the_daily_digest(notify, sms_gateway, smtp_server):
    _sms(notify, sms_gateway, sms_per_hour=2)
    _smtp(notify, smtp_server)
    sms_gateway.script[:] = [(200, {"result": {"code": "OK"}}, 0)]
    freeze(beijing(2025, 9, 22, 9, 0))
    sent = [notify.request("warning", context={"finding_no": f"DC-{i}"}) for i in range(4)]
    notify.deliver()
    assert len(sms_gateway.requests) == 2
    throttled = notify.rows(Delivery, Delivery.channel == "sms", Delivery.status == "deferred")
    assert sorted(r.notice_id for r in throttled) == sorted(n.id for n in sent[2:])
    # after an hour the budget is back
    advance(hours=1, minutes=1)
    notify.request("warning", context={"finding_no": "DC-9"})
    notify.deliver()
    assert len(sms_gateway.requests) == 3
    # the daily digest (from 08:00 local, next day) lists the folded messages, once a day
    freeze(beijing(2025, 9, 23, 8, 0))
    assert digest_sweep(notify.runtime) == {"digests": 1}
    assert digest_sweep(notify.runtime) == {"digests": 0}
    [digest] = notify.rows(Notice, Notice.notice_type == "digest")
    assert digest.dedupe_key == "digest:unit:411302-zjj:2025-09-23"
    assert "未签收通知（5 件）" in digest.body
    assert "因发送频次限制未单独发送的消息（2 条）" in digest.body and "警示通知：DC-2（短信）" in digest.body
    assert all(r.last_error == f"folded into {digest.dedupe_key}"
               for r in notify.rows(Delivery, Delivery.channel == "sms", Delivery.status == "deferred"))
    notify.deliver()
    assert any(m["Subject"] == "每日汇总：2025年9月23日" for _, m in smtp_server.parsed())
