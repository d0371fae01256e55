"""Scorecards (三率三色), the lagging check (工作被动落后) and follow-up calls (回访): wiring."""
from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError

from shared import clock
from shared.runtime import ServiceRuntime, SweepJob
from supervise_svc.scores import compute, domain, settings_of
from supervise_svc.scoring_models import ScorecardRun

log = logging.getLogger(__name__)


def register(runtime: ServiceRuntime) -> None:
    """Declare the actors and periodic jobs of the scorecards and follow-ups."""
    runtime.sweeps.append(SweepJob("monthly_scorecard", monthly_scorecard))


def monthly_scorecard(runtime: ServiceRuntime) -> str | None:
    """On the first run after a local month ends: compute that month once and run the lagging check.

    Idempotent: a month that already has a run is left alone (recompute it by hand through the API).
    Returns the month computed, or None.
    """
    now = clock.now()
    month = domain.shift_month(domain.local_month_of(now, runtime.settings.timezone), -1)
    settings = settings_of(runtime)
    with runtime.read_sessions() as session:  # the common case, every minute: already computed
        if session.get(ScorecardRun, month) is not None:
            return None
    try:
        with runtime.uow() as session:
            if session.get(ScorecardRun, month) is not None:
                return None
            compute.compute_month(session, month=month, settings=settings, tz=runtime.settings.timezone,
                                  now=now, computed_by="sweep")
            opened = compute.lagging_check(session, runtime, month=month, settings=settings, detected_at=now)
    except IntegrityError:  # another scheduler computed it at the same moment
        log.info("scorecard %s computed concurrently elsewhere", month)
        return None
    log.info("monthly scorecard %s: %d lagging findings opened", month, opened)
    return month


def compute_by_hand(runtime: ServiceRuntime, *, month: str, user: str) -> dict:
    """(Re)compute ``month`` and run the lagging check in one transaction (the API's compute)."""
    now = clock.now()
    settings = settings_of(runtime)
    with runtime.uow() as session:
        run = compute.compute_month(session, month=month, settings=settings, tz=runtime.settings.timezone,
                                    now=now, computed_by=user)
        opened = compute.lagging_check(session, runtime, month=month, settings=settings, detected_at=now)
        return {"month": run.month, "computed_at": run.computed_at, "as_of": run.as_of,
                "settings_version": run.settings_version, "computations": run.computations,
                "findings_opened": opened}
