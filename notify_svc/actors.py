"""notify_svc actors (queue ``notify``): notice.requested → inbox + delivery rows (sent right after the
commit, in the same worker thread); directory and findings copies; the delivery task; the periodic
sweeps (deliveries, escalation, digest)."""
from __future__ import annotations

from dramatiq import Middleware

from notify_svc import channels, delivery, escalation, service
from shared.broker import declare_consumer, declare_task
from shared.runtime import ServiceRuntime, SweepJob
from shared.sweeps import declare_sweep


class WorkerDelivery(Middleware):
    """While a worker runs this runtime's actors, the ``notice.requested`` consumer sends its new
    deliveries itself right after its commit; the worker's shutdown closes the pooled SMTP connections."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime

    def after_worker_boot(self, broker, worker) -> None:
        self.runtime.extras[service.INLINE] = True

    def before_worker_shutdown(self, broker, worker) -> None:
        self.runtime.extras[service.INLINE] = False
        channels.close_smtp_pools()


def register(runtime: ServiceRuntime) -> None:
    # time_limit covers the inline sends after the commit (SMTP 10 s, SMS and webhook 5 s by default)
    declare_consumer(runtime, "notify.notice_requested",
                     lambda rt, session, env: service.deliver_to_inbox(session, env.payload, rt),
                     max_retries=5, time_limit=60_000)
    declare_consumer(runtime, "notify.directory_changed",
                     lambda rt, session, env: service.copy_contacts(session, env.payload),
                     max_retries=5, time_limit=60_000)
    declare_consumer(runtime, "notify.finding_changed",
                     lambda rt, session, env: service.finding_changed(session, env.payload),
                     max_retries=5, time_limit=30_000)
    # Sends happen after a commit (never inside a transaction); a redelivered job finds its rows sent
    # or leased and sends nothing.
    runtime.extras["deliver_actor"] = declare_task(
        runtime, "notify.deliver", lambda notice_id: delivery.deliver(runtime, notice_id) and None,
        max_retries=3, time_limit=5 * 60_000)
    runtime.broker.add_middleware(WorkerDelivery(runtime))
    runtime.sweeps.append(SweepJob("deliveries", delivery.deliver))
    runtime.sweeps.append(SweepJob("escalation", escalation.escalation_sweep))
    runtime.sweeps.append(SweepJob("digest", escalation.digest_sweep))
    declare_sweep(runtime)
