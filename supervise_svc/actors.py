"""supervise_svc actors (queue ``supervise``): fold events into the read model, follow the
acknowledgements of notices about findings; the checks and the ladder as periodic jobs."""
from __future__ import annotations

from shared.broker import declare_consumer
from shared.runtime import ServiceRuntime
from shared.sweeps import declare_sweep
from supervise_svc import checks, ladder, service


def register(runtime: ServiceRuntime) -> None:
    tz = runtime.settings.timezone
    declare_consumer(runtime, "supervise.petition_registered",
                     lambda rt, session, env: service.project_petition_registered(session, env.payload, runtime=rt),
                     max_retries=5, time_limit=30_000)
    declare_consumer(runtime, "supervise.case_assigned",
                     lambda rt, session, env: service.project_case_assigned(session, env.payload),
                     max_retries=5, time_limit=30_000)
    declare_consumer(runtime, "supervise.directory_changed",
                     lambda rt, session, env: service.project_directory_changed(session, env.payload),
                     max_retries=5, time_limit=60_000)
    declare_consumer(runtime, "supervise.case_action_recorded",
                     lambda rt, session, env: service.project_case_action(session, env.payload, env.id, runtime=rt,
                                                                          tz=tz),
                     max_retries=5, time_limit=30_000)
    declare_consumer(runtime, "supervise.notice_acknowledged",
                     lambda rt, session, env: ladder.project_notice_acknowledged(session, env.payload),
                     max_retries=5, time_limit=30_000)
    declare_consumer(runtime, "supervise.notice_escalated",
                     lambda rt, session, env: ladder.project_notice_escalated(session, env.payload),
                     max_retries=5, time_limit=30_000)
    checks.register(runtime)
    declare_sweep(runtime)
