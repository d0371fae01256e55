"""What makes delivery fast without giving up exactly-once: reused SMTP connections (NOOP health check,
reconnect, closed when idle), a worker sending right after the inbox commit with rows born claimed,
batched claims."""
from __future__ import annotations

import socket
import time
import uuid
from datetime import timedelta

import dramatiq
from sqlalchemy import event

from notify_svc import channels, delivery, service
from notify_svc.models import Delivery
from shared import clock
from shared.broker import ContextMiddleware
from shared.contracts import NoticeRequested, dump_envelope, envelope_for
from tests.notify.conftest import advance


def _email(notify, smtp_server, **more):
    notify.configure(smtp_host=smtp_server.host, smtp_port=smtp_server.port, lease_seconds=120, **more)


def test_smtp_connections_are_reused_checked_with_noop_and_closed_when_idle(notify, smtp_server, monkeypatch):
    _email(notify, smtp_server)
    for i in range(3):
        notify.request("assignment", subject_id=f"c{i}")
    assert notify.deliver() == {"sent": 3}
    assert len(smtp_server.messages) == 3 and smtp_server.connections() == 1
    pool = channels.smtp_pool(notify.cfg)
    assert pool.opened == 1 and pool.idle_count() == 1
    # the server drops the idle connection: the NOOP check notices, a new connection sends the message
    monkeypatch.setattr(channels.SmtpPool, "NOOP_AFTER", 0.0)
    client = pool.acquire()
    client.sock.shutdown(socket.SHUT_RDWR)
    pool.release(client, broken=False)
    notify.request("assignment", subject_id="c3")
    assert notify.deliver() == {"sent": 1}
    assert pool.opened == 2 and smtp_server.connections() == 2 and len(smtp_server.messages) == 4
    # idle longer than XINFANG_NOTIFY_SMTP_IDLE_SECONDS (30): closed by the reaper
    assert pool.reap(now=time.monotonic() + 29) == 0
    assert pool.reap(now=time.monotonic() + 31) == 1 and pool.idle_count() == 0


def test_without_reuse_every_message_has_its_own_connection(notify, smtp_server):
    _email(notify, smtp_server, smtp_idle_seconds=0)
    for i in range(2):
        notify.request("assignment", subject_id=f"c{i}")
    assert notify.deliver() == {"sent": 2}
    assert channels.smtp_pool(notify.cfg) is None and smtp_server.connections() == 2


def _body(i: int) -> dict:
    payload = NoticeRequested(notice_type="assignment", dedupe_key=f"assignment:w{i}:unit:411302-zjj:1",
                              recipient_kind="unit", recipient_id="411302-zjj", recipient_name="宛城区住房和城乡建设局",
                              subject_id=f"w{i}", context={"display_no": f"41130200000000000{i}",
                                                           "region_code": "411302", "unit_name": "宛城区住房和城乡建设局",
                                                           "category": "城乡建设", "request_text": "外墙脱落",
                                                           "assigned_at": "2026-11-23T02:00:00+00:00",
                                                           "due_at": "2026-12-23T09:59:59+00:00",
                                                           "deadline_basis": "《信访工作条例》第三十五条"})
    return dump_envelope(envelope_for(payload, id=uuid.uuid4().hex, occurred_at=clock.now(), producer="test",
                                      correlation_id="t"))


def test_a_worker_sends_right_after_the_inbox_commit_once_per_notice(notify_on, smtp_server):
    notify = notify_on
    _email(notify, smtp_server)
    broker = notify.runtime.broker
    broker.add_middleware(ContextMiddleware())  # message ids for the inbox dedupe, as make_broker adds it
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
    worker.start()
    try:
        assert notify.runtime.extras[service.INLINE] is True
        actor = broker.get_actor("notify.notice_requested")
        for i in range(4):
            actor.send(_body(i))
        actor.send(_body(0))  # the same request again, as a new message
        broker.join("notify")
        worker.join()
    finally:
        worker.stop()
    assert notify.runtime.extras[service.INLINE] is False  # the shutdown hook; pools closed
    rows = notify.rows(Delivery)
    assert len(rows) == 4 and {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    assert len(smtp_server.messages) == 4
    assert broker.queues["notify"].qsize() == 0  # and no delivery job was needed
    assert notify.deliver() == {}


def test_rows_born_claimed_by_a_worker_killed_before_it_sent_go_out_once_after_the_lease(notify_on, smtp_server,
                                                                                        monkeypatch):
    notify = notify_on
    _email(notify, smtp_server)
    notify.runtime.extras[service.INLINE] = True
    monkeypatch.setattr(delivery, "send_inline", lambda runtime, claimed: None)  # killed after the commit
    notice = notify.request("assignment", subject_id="c1", message_id="m-1")
    [row] = notify.rows(Delivery)
    assert (row.status, row.attempts) == ("sending", 1)
    assert row.lease_until == clock.now() + timedelta(seconds=120)
    # the message is redelivered, the job and the sweep run while the lease holds: nothing is sent
    assert notify.request("assignment", subject_id="c1", message_id="m-1").id == notice.id
    notify.runtime.broker.get_actor("notify.deliver").fn(notice.id)
    assert notify.deliver() == {} and smtp_server.messages == []
    advance(seconds=121)
    assert notify.deliver() == {"sent": 1} and notify.deliver() == {}
    [row] = notify.rows(Delivery)
    assert (row.status, row.attempts) == ("sent", 2) and len(smtp_server.messages) == 1


def test_a_batch_is_claimed_with_one_select_and_one_update(notify_on):
    notify = notify_on
    notify.configure(smtp_host="127.0.0.1", smtp_port=9)  # claimed only, never sent here
    for i in range(5):
        notify.request("assignment", subject_id=f"c{i}")
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement.split()[0].upper())

    event.listen(notify.runtime.engine, "before_cursor_execute", count)
    try:
        with notify.runtime.uow() as session:
            claimed = delivery.claim(session, notify.runtime)
    finally:
        event.remove(notify.runtime.engine, "before_cursor_execute", count)
    assert len(claimed) == 5 and {c.out.recipient_name for c in claimed} == {"宛城区住房和城乡建设局"}
    assert [s for s in statements if s in ("SELECT", "UPDATE")] == ["SELECT", "UPDATE"]
    assert {(r.status, r.attempts) for r in notify.rows(Delivery)} == {("sending", 1)}
