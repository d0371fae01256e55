"""Exactly one message per channel despite duplicated requests, redelivered jobs and a worker
killed mid-delivery (each backend); the residual at-least-once window, documented by a test."""
from __future__ import annotations

import threading
from collections import Counter

from notify_svc import delivery
from notify_svc.models import Delivery, Notice
from tests.notify.conftest import advance


def _email(notify, smtp_server, **more):
    notify.configure(smtp_host=smtp_server.host, smtp_port=smtp_server.port, lease_seconds=120, **more)


def test_duplicated_requests_give_one_notice_and_one_email(notify_on, smtp_server):
    notify = notify_on
    _email(notify, smtp_server)
    # the same broker message twice (redelivery), and the same request re-sent as a new message
    first = notify.request("assignment", subject_id="c1", message_id="m-1")
    again = notify.request("assignment", subject_id="c1", message_id="m-1")
    resent = notify.request("assignment", subject_id="c1", message_id="m-2")
    assert first.id == again.id == resent.id
    assert len(notify.rows(Notice)) == 1 and len(notify.rows(Delivery)) == 1
    notify.deliver()
    notify.deliver()
    notify.runtime.broker.get_actor("notify.deliver").fn(first.id)  # a redelivered delivery job
    assert len(smtp_server.messages) == 1


def test_worker_killed_after_claiming_sends_once_after_the_lease(notify_on, smtp_server):
    notify = notify_on
    _email(notify, smtp_server)
    notice = notify.request("assignment")
    # a worker claims the row (marked sending, committed) and is killed before it sends
    with notify.runtime.uow() as s:
        [claimed] = delivery.claim(s, notify.runtime)
    [row] = notify.rows(Delivery)
    assert (row.status, row.attempts) == ("sending", 1)
    # the job is redelivered and the sweep runs while the lease holds: nothing is sent
    notify.runtime.broker.get_actor("notify.deliver").fn(notice.id)
    assert notify.deliver() == {} and smtp_server.messages == []
    # after the lease the row is claimed again and sent exactly once
    advance(seconds=121)
    assert notify.deliver() == {"sent": 1}
    assert notify.deliver() == {}
    assert len(smtp_server.messages) == 1
    [row] = notify.rows(Delivery)
    assert (row.status, row.attempts) == ("sent", 2)
    # the killed worker's result, arriving late, is ignored
    with notify.runtime.uow() as s:
        assert delivery.record(s, notify.runtime, claimed, None) == "stale"


def test_residual_window_killed_after_the_server_accepted_resends_with_the_same_message_id(notify, smtp_server):
    """Documented at-least-once window: killed after SMTP accepted but before 'sent' was committed."""
    from notify_svc import channels

    _email(notify, smtp_server)
    notice = notify.request("assignment")
    with notify.runtime.uow() as s:
        [claimed] = delivery.claim(s, notify.runtime)
    channels.send(notify.cfg, claimed.out)  # accepted by the server; the worker dies before recording
    advance(seconds=121)
    assert notify.deliver() == {"sent": 1}
    ids = [m["Message-ID"] for _, m in smtp_server.parsed()]
    assert ids == [f"<{notice.id}@xinfang.notify>"] * 2  # receivers can drop the duplicate by Message-ID


def test_two_workers_at_once_send_each_email_once(notify_on, smtp_server):
    notify = notify_on
    _email(notify, smtp_server)
    for i in range(20):
        notify.request("assignment", subject_id=f"case-{i}")
    barrier, results = threading.Barrier(2), []

    def work():
        barrier.wait()
        results.append(delivery.deliver(notify.runtime))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.get("sent", 0) for r in results) == 20
    per_notice = Counter(m["Message-ID"] for _, m in smtp_server.parsed())
    assert len(per_notice) == 20 and set(per_notice.values()) == {1}


def test_a_failing_channel_never_blocks_the_inbox_or_other_channels(notify_on, smtp_server):
    notify = notify_on
    _email(notify, smtp_server, sms_url="http://127.0.0.1:9/", sms_timeout=0.3)  # nothing listens on port 9
    notice = notify.request("warning")
    assert notice.title == "警示通知：DC2026-0001"  # the inbox entry is there before any send
    assert notify.deliver() == {"sent": 1, "failed": 1}
    assert {(r.channel, r.status) for r in notify.rows(Delivery)} == {("email", "sent"), ("sms", "failed")}
    assert len(smtp_server.messages) == 1
