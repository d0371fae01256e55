"""notify_svc actors (queue ``notify``): notice.requested -> inbox; the sweep."""
from __future__ import annotations

from notify_svc import service
from shared.broker import declare_consumer
from shared.runtime import ServiceRuntime
from shared.sweeps import declare_sweep


def register(runtime: ServiceRuntime) -> None:
    declare_consumer(runtime, "notify.notice_requested",
                     lambda rt, session, env: service.deliver_to_inbox(session, env.payload),
                     max_retries=5, time_limit=30_000)
    declare_consumer(runtime, "notify.directory_changed",
                     lambda rt, session, env: service.copy_contacts(session, env.payload),
                     max_retries=5, time_limit=60_000)
    declare_sweep(runtime)
