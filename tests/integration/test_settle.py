"""EmbeddedSystem.settle: the tests', simulator's and demo's "everything handled" barrier."""
from __future__ import annotations

import time

import dramatiq


def test_settle_waits_for_a_message_published_after_it_joined_the_queue(system):
    """A relay thread may publish a consumer's outbox rows after ``settle`` joined the queue they go to (seen in
    CI: the simulator moved its clock on before intake handled a day's 交办); ``settle`` must still wait."""
    handled = []

    def settle_probe():
        time.sleep(0.2)
        handled.append("done")

    probe = dramatiq.actor(settle_probe, broker=system.broker, queue_name="intake", actor_name="settle_probe")
    joined = system.worker.join
    late = []

    def join_then_publish_late():  # as a relay thread would: once every queue has been joined
        joined()
        if not late:
            late.append(probe.send())

    system.worker.join = join_then_publish_late
    system.settle(timeout=30)
    assert late, "the probe was never published"
    assert handled == ["done"]
