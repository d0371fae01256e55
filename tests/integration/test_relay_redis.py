"""The outbox relay publishing to the real Redis broker: a batch goes out in one pipeline and leaves in
Redis exactly what ``RedisBroker.enqueue`` leaves; a failed publication keeps the rows pending."""
from __future__ import annotations

import json
import threading

import dramatiq
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from shared.broker import enqueue_many
from shared.migrations import upgrade
from shared.outbox import PENDING, PUBLISHED, OutboxRelay
from tests.integration.test_outbox_inbox import _payload


def _drain(broker: RedisBroker, queue: str, count: int) -> list[dramatiq.Message]:
    consumer = broker.consume(queue, prefetch=count + 1, timeout=200)
    got = []
    for _ in range(50):
        message = next(consumer)
        if message is not None:
            got.append(message)
            consumer.ack(message)
        if len(got) == count:
            break
    extra = next(consumer)
    consumer.close()
    assert extra is None, "more messages than enqueued"
    return got


def _message(n: int) -> dramatiq.Message:
    return dramatiq.Message(queue_name="q", actor_name="a.b", args=({"n": n, "text": "诉求"},), kwargs={},
                            options={"producer": "intake"}, message_id=f"m{n}")


def test_enqueue_many_leaves_what_enqueue_leaves(redis_url, redis_namespace):
    broker = RedisBroker(url=redis_url, namespace=redis_namespace)
    broker.declare_queue("q")
    # Given one message enqueued the stock way and four through the pipeline, then one more the stock way
    broker.enqueue(_message(0))
    enqueue_many(broker, [_message(n) for n in range(1, 5)])
    broker.enqueue(_message(5))
    # Then a consumer gets all six, in order, with their ids, arguments and options
    got = _drain(broker, "q", 6)
    assert [m.message_id for m in got] == [f"m{n}" for n in range(6)]
    assert [m.args[0]["n"] for m in got] == list(range(6))
    assert {m.options["producer"] for m in got} == {"intake"}
    assert len({m.options["redis_message_id"] for m in got}) == 6
    broker.close()


def test_enqueue_many_sends_no_script_check_and_reloads_a_flushed_script(redis_url, redis_namespace):
    """A batch is one pipeline of EVALSHA calls, without redis-py's SCRIPT EXISTS round trip per pipeline; a
    Redis that lost the dispatch script (restarted, flushed) gets it loaded again and the batch arrives."""
    broker = RedisBroker(url=redis_url, namespace=redis_namespace)
    broker.declare_queue("q")
    broker.enqueue(_message(0))  # the stock way loads the script
    sent = []
    real = broker.client.connection_pool.get_connection

    def counting(*args, **kwargs):
        conn = real(*args, **kwargs)
        if not getattr(conn, "_counted", False):
            original = conn.send_packed_command

            def send(command, *a, **kw):
                sent.append(b"".join(command) if isinstance(command, list) else command)
                return original(command, *a, **kw)

            conn.send_packed_command, conn._counted = send, True
        return conn

    broker.client.connection_pool.get_connection = counting
    try:
        enqueue_many(broker, [_message(n) for n in range(1, 4)])
        assert not any(b"SCRIPT" in c for c in sent) and sum(c.count(b"EVALSHA") for c in sent) == 3
        # When the server forgets its scripts, the next batch still arrives, whole
        broker.client.script_flush()
        enqueue_many(broker, [_message(n) for n in range(4, 6)])
    finally:
        broker.client.connection_pool.get_connection = real
    got = _drain(broker, "q", 6)
    assert sorted(m.message_id for m in got) == [f"m{n}" for n in range(6)]
    broker.close()


@pytest.fixture
def pg_runtime(settings, pg_urls, redis_url, redis_namespace):
    from intake_svc.app import build_runtime

    settings = settings.replace(database_urls=pg_urls)
    upgrade("intake", settings)
    broker = RedisBroker(url=redis_url, namespace=redis_namespace)
    for queue in ("assign", "supervise"):
        broker.declare_queue(queue)
    rt = build_runtime(settings, broker=broker)
    yield rt
    rt.close()
    broker.close()


def _rows(runtime):
    with runtime.sessions() as s:
        return list(s.scalars(select(runtime.outbox_model).order_by(runtime.outbox_model.created_at,
                                                                      runtime.outbox_model.id)))


def test_relay_publishes_a_batch_in_order_once(pg_runtime):
    runtime = pg_runtime
    for n in range(1, 8):
        with runtime.uow() as session:
            runtime.emit(session, _payload(n))
    runtime.relay.batch_size = 10
    # When the relay publishes: a batch of 10 rows, then the last 4, then nothing
    assert [runtime.relay.publish_pending() for _ in range(3)] == [10, 4, 0]
    rows = _rows(runtime)
    assert {r.status for r in rows} == {PUBLISHED} and {r.attempts for r in rows} == {1}
    # Then each queue holds its messages in the order they were written, under the outbox row ids
    for queue in ("assign", "supervise"):
        expected = [r for r in rows if r.queue_name == queue]
        got = _drain(runtime.broker, queue, len(expected))
        assert [m.message_id for m in got] == [r.id for r in expected]
        assert [m.args[0] for m in got] == [json.loads(r.body) for r in expected]
        assert [m.actor_name for m in got] == [r.actor_name for r in expected]


def test_a_failed_publication_keeps_the_rows_pending(pg_runtime, monkeypatch):
    runtime = pg_runtime
    with runtime.uow() as session:
        runtime.emit(session, _payload(1))
        runtime.emit(session, _payload(2))

    def broken(*_args, **_kwargs):
        raise ConnectionError("redis went away")

    monkeypatch.setattr(runtime.broker.client, "pipeline", broken)
    with pytest.raises(ConnectionError):
        runtime.relay.publish_pending()
    assert {r.status for r in _rows(runtime)} == {PENDING}
    monkeypatch.undo()
    assert runtime.relay.publish_pending() == 4
    assert {r.status for r in _rows(runtime)} == {PUBLISHED}


class _Recorder:
    """A broker that only records what it is given (the in-process path of ``enqueue_many``)."""

    def __init__(self) -> None:
        self.lock, self.ids = threading.Lock(), []

    def enqueue(self, message):
        with self.lock:
            self.ids.append(message.message_id)


def test_concurrent_relays_claim_disjoint_batches_within_the_limit(settings, pg_urls):
    from intake_svc.app import build_runtime

    settings = settings.replace(database_urls=pg_urls)
    upgrade("intake", settings)
    runtime = build_runtime(settings, broker=StubBroker())
    try:
        for n in range(150):  # 300 rows
            with runtime.uow() as session:
                runtime.emit(session, _payload(n))
        recorder, sizes = _Recorder(), []
        relays = [OutboxRelay(service="intake", sessions=runtime.sessions, outbox_model=runtime.outbox_model,
                              broker=recorder, batch_size=7) for _ in range(4)]

        def drain(relay):
            while (n := relay.publish_pending()) > 0:
                sizes.append(n)

        threads = [threading.Thread(target=drain, args=(relay,)) for relay in relays]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Every row published exactly once, no batch above the limit
        assert max(sizes) <= 7 and sum(sizes) == 300
        assert len(recorder.ids) == 300 and len(set(recorder.ids)) == 300
        assert {r.status for r in _rows(runtime)} == {PUBLISHED}
    finally:
        runtime.close()
