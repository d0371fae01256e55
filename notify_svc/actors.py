"""notify_svc actors (queue ``notify``): notice.requested → inbox + delivery rows; directory and
findings copies; the delivery task; the periodic sweeps (deliveries, escalation, digest)."""
from __future__ import annotations

from notify_svc import delivery, escalation, service
from shared.broker import declare_consumer, declare_task
from shared.runtime import ServiceRuntime, SweepJob
from shared.sweeps import declare_sweep


def register(runtime: ServiceRuntime) -> None:
    declare_consumer(runtime, "notify.notice_requested",
                     lambda rt, session, env: service.deliver_to_inbox(session, env.payload, rt),
                     max_retries=5, time_limit=30_000)
    declare_consumer(runtime, "notify.directory_changed",
                     lambda rt, session, env: service.copy_contacts(session, env.payload),
                     max_retries=5, time_limit=60_000)
    declare_consumer(runtime, "notify.finding_changed",
                     lambda rt, session, env: service.finding_changed(session, env.payload),
                     max_retries=5, time_limit=30_000)
    # Sends happen here, after the consumer's commit (never inside it); a redelivered job finds its
    # rows sent or leased and sends nothing.
    runtime.extras["deliver_actor"] = declare_task(
        runtime, "notify.deliver", lambda notice_id: delivery.deliver(runtime, notice_id),
        max_retries=3, time_limit=5 * 60_000)
    runtime.sweeps.append(SweepJob("deliveries", delivery.deliver))
    runtime.sweeps.append(SweepJob("escalation", escalation.escalation_sweep))
    runtime.sweeps.append(SweepJob("digest", escalation.digest_sweep))
    declare_sweep(runtime)
