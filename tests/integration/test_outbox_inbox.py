"""The transactional outbox and the inbox, on SQLite and on PostgreSQL."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import func, select

from shared.contracts import PetitionRegistered
from shared.migrations import upgrade
from shared.outbox import DONE, PENDING, PUBLISHED, OutboxRelay


@pytest.fixture
def runtime(backend_settings):
    from intake_svc.app import build_runtime

    upgrade("intake", backend_settings)
    broker = StubBroker()
    for queue in ("assign", "supervise", "intake"):
        broker.declare_queue(queue)
    rt = build_runtime(backend_settings, broker=broker)
    yield rt
    rt.close()


def _payload(n: int = 1) -> PetitionRegistered:
    return PetitionRegistered(petition_id=f"p{n}", display_no=f"41130220261122{n:04d}", system="s", county_no=None,
                              region_code="411302", category="城乡建设", channel="网上信访", request_text="诉求",
                              petitioner_name="张三", registered_at=datetime(2026, 11, 22, tzinfo=timezone.utc))


def _rows(runtime):
    with runtime.sessions() as s:
        return list(s.scalars(select(runtime.outbox_model).order_by(runtime.outbox_model.queue_name)))


def test_rolled_back_change_leaves_no_message(runtime):
    # Given a transaction that emits and then fails
    with pytest.raises(RuntimeError):
        with runtime.uow() as session:
            runtime.emit(session, _payload())
            raise RuntimeError("the change failed")
    # Then no outbox row exists
    assert _rows(runtime) == []


def test_committed_change_writes_one_row_per_consumer(runtime):
    with runtime.uow() as session:
        event_id = runtime.emit(session, _payload())
    rows = _rows(runtime)
    # petition.registered goes to assign and to supervise: two rows, one event
    assert [(r.queue_name, r.actor_name) for r in rows] == [
        ("assign", "assign.petition_registered"), ("supervise", "supervise.petition_registered")]
    assert {r.event_id for r in rows} == {event_id}
    assert len({r.id for r in rows}) == 2
    assert all(r.status == PENDING for r in rows)
    assert json.loads(rows[0].body)["payload"]["petition_id"] == "p1"


def test_relay_publishes_each_row_once_with_its_id_as_message_id(runtime):
    with runtime.uow() as session:
        runtime.emit(session, _payload())
    # When the relay runs twice
    assert runtime.relay.publish_pending() == 2
    assert runtime.relay.publish_pending() == 0
    # Then each queue holds one message whose id is the outbox row id
    rows = {r.queue_name: r for r in _rows(runtime)}
    for queue in ("assign", "supervise"):
        queued = runtime.broker.queues[queue]
        assert queued.qsize() == 1
        message = json.loads(queued.get())
        assert message["message_id"] == rows[queue].id
        assert message["actor_name"] == rows[queue].actor_name
        assert rows[queue].status == PUBLISHED


def test_embedded_restart_republishes_what_was_not_confirmed(runtime):
    with runtime.uow() as session:
        runtime.emit(session, _payload(1))
        runtime.emit(session, _payload(2))
    runtime.relay.publish_pending()
    rows = _rows(runtime)
    # Given one message confirmed by its consumer, three still in flight when the process died
    runtime.relay.confirm(rows[0].id)
    # When a new relay starts on the same database
    relay = OutboxRelay(service="intake", sessions=runtime.sessions, outbox_model=runtime.outbox_model,
                        broker=runtime.broker, confirm_on_ack=True)
    assert relay.requeue_unconfirmed() == 3
    # Then exactly the unconfirmed ones are published again
    assert relay.publish_pending() == 3
    statuses = sorted(r.status for r in _rows(runtime))
    assert statuses == [DONE, PUBLISHED, PUBLISHED, PUBLISHED]


def test_confirmations_while_the_relay_runs_are_written_by_its_thread_and_at_stop(runtime):
    with runtime.uow() as session:
        runtime.emit(session, _payload(1))
        runtime.emit(session, _payload(2))
    runtime.relay.publish_pending()
    rows = _rows(runtime)
    runtime.relay.start()
    try:
        # A consumer's confirmation is queued for the relay thread, which writes it shortly after
        runtime.relay.confirm(rows[0].id)
        deadline = time.monotonic() + 10
        while _status(runtime, rows[0].id) != DONE and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _status(runtime, rows[0].id) == DONE
        # One queued when the thread is stopping is written by stop()
        runtime.relay._confirms.append((rows[1].id, False, None))
    finally:
        runtime.relay.stop()
    assert [_status(runtime, r.id) for r in rows] == [DONE, DONE, PUBLISHED, PUBLISHED]


def _status(runtime, row_id: str) -> str:
    with runtime.sessions() as s:
        return s.get(runtime.outbox_model, row_id).status


def test_inbox_claims_a_message_id_once(runtime):
    with runtime.uow() as session:
        assert runtime.claim(session, "m-1", "a.b") is True
    with runtime.uow() as session:
        assert runtime.claim(session, "m-1", "a.b") is False
        assert runtime.claim(session, "m-2", "a.b") is True


def test_concurrent_duplicate_deliveries_have_one_winner(runtime):
    # Given the same message delivered to two workers at once
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def deliver():
        with runtime.uow() as session:
            barrier.wait()
            results.append(runtime.claim(session, "dup-1", "a.b"))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # Then exactly one claims it
    assert sorted(results) == [False, True]
    with runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(runtime.inbox_model)) == 1


def test_backlog_counts_pending_rows(runtime):
    with runtime.uow() as session:
        runtime.emit(session, _payload())
    assert runtime.relay.backlog() == 2
    runtime.relay.drain()
    assert runtime.relay.backlog() == 0


ON_POSTGRESQL = pytest.mark.parametrize("backend_settings", ["postgres"], indirect=True)


@ON_POSTGRESQL
def test_relay_claims_through_the_pending_index_in_order_not_a_bitmap(runtime):
    """Every published row leaves a dead entry in ix_outbox_pending until a VACUUM (autovacuum is off on the CI
    server, and between two autovacuum runs in production).  A bitmap scan never marks those entries dead, so each
    claim would visit every row published since the last VACUUM again; the relay's claim must be an index scan,
    which marks them the first time and then skips them.  The plan is read in the relay's own transaction, right
    after its claim, with the settings the relay made."""
    from sqlalchemy import event, text

    engine = runtime.engine
    with engine.connect() as conn:
        conn.execute(text("ALTER TABLE outbox SET (autovacuum_enabled = false)"))
        conn.commit()
    # Given a few thousand rows published since the last VACUUM ANALYZE, of the empty table (the state the
    # benchmark found after its fill)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE outbox"))
    with runtime.uow() as session:
        runtime.emit_many(session, [_payload(n) for n in range(1500)])
    runtime.relay.batch_size = 200
    assert runtime.relay.drain() == 3000
    with runtime.uow() as session:
        runtime.emit(session, _payload(9999))
    plans: list[str] = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("WITH claimed"):
            with cursor.connection.cursor() as own:  # same transaction, the relay's cursor left as it is
                own.execute("EXPLAIN (FORMAT JSON) " + statement, parameters)
                plans.append(json.dumps(own.fetchone()[0]))

    event.listen(engine, "after_cursor_execute", explain)
    try:
        # When the relay claims the new rows
        assert runtime.relay.publish_pending() == 2
    finally:
        event.remove(engine, "after_cursor_execute", explain)
    # Then its claim walked the partial index in created_at order
    [plan] = plans
    assert '"Index Name": "ix_outbox_pending"' in plan and '"Node Type": "Index Scan"' in plan, plan
    assert "Bitmap" not in plan, plan
