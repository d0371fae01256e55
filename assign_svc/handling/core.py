"""``act``: validate an action against the case's state and the caller, run its handler,
record it on the timeline and announce it.  Never commits (the view owns the transaction).

Errors: ``NotFound`` (404), ``Forbidden`` (403: outside the case's unit or jurisdiction,
or the wrong role), ``Conflict`` (409: illegal in the current state — lists the actions
allowed now — or the case changed underneath), ``BadInput`` (422: bad dates, limits …).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Callable

from sqlalchemy.orm import Session

from assign_svc import timeline
from assign_svc.domain import workflow
from assign_svc.models import Case, Person, Unit
from assign_svc.rules import Snapshot, snapshot
from shared import clock
from shared.auth import Principal
from shared.calendar import local_date
from shared.regions import subtree_prefix
from shared.runtime import ServiceRuntime


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


class Conflict(Exception):
    def __init__(self, message: str, allowed: list[str] | None = None) -> None:
        super().__init__(message)
        self.allowed = allowed or []


class BadInput(ValueError):
    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


@dataclass
class Ctx:
    """What a handler works with."""

    session: Session
    runtime: ServiceRuntime
    case: Case
    principal: Principal
    now: datetime
    snap: Snapshot
    previous: str
    target: str
    event_data: dict = field(default_factory=dict)

    @property
    def tz(self) -> str:
        return self.runtime.settings.timezone

    @property
    def today(self) -> date:
        return local_date(self.now, self.tz)

    @property
    def unit(self) -> Unit:
        return self.session.get(Unit, self.case.unit_id)

    def person(self, person_id: str | None) -> Person | None:
        return self.session.get(Person, person_id) if person_id else None


Handler = Callable[[Ctx, dict], str]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    """Register the handler of action ``name``; it returns the reason shown on the timeline."""
    def wrap(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn
    return wrap


# ---------------------------------------------------------------- who may act


def _is_higher(principal: Principal, case: Case) -> bool:
    """The next-higher unit: a jurisdiction that contains the case's county and is wider than it."""
    prefix = subtree_prefix(principal.jurisdiction)
    return principal.may_see(case.region_code) and len(prefix) < 6


def _may(principal: Principal, case: Case, who: str, session: Session) -> bool:
    role, unit_id = principal.role, principal.unit_id
    if who == workflow.UNIT:
        return role in ("handler", "leader") and unit_id == case.unit_id
    if who == workflow.HEAD:
        return role == "leader" and unit_id == case.unit_id
    if who == workflow.OWNER:
        leader = session.get(Person, case.leader_id) if case.leader_id and role == "leader" else None
        return leader is not None and (leader.username == principal.username or leader.unit_id == unit_id)
    if who == workflow.PETITION_DEPT:
        if role == "registrar":
            return True
        unit = session.get(Unit, unit_id) if unit_id else None
        return unit is not None and unit.kind == "petition_dept"
    if who == workflow.HIGHER:
        return role in ("registrar", "leader", "supervisor") and _is_higher(principal, case)
    return False


def authorize(session: Session, principal: Principal, case: Case, action: str) -> None:
    if not principal.may_see(case.region_code):
        raise Forbidden(f"case {case.display_no} lies outside your jurisdiction {principal.jurisdiction}")
    if principal.role == "admin":
        return
    spec = workflow.ACTIONS.get(action)
    if spec is None:
        return  # unknown actions are refused by the state machine (409 with the allowed ones)
    if not any(_may(principal, case, who, session) for who in spec.actors):
        raise Forbidden(f"“{spec.label}” is for {'/'.join(spec.actors)}; you ({principal.role}, unit "
                        f"{principal.unit_id or '-'}) may not do it on this case")


# ---------------------------------------------------------------- the entry point


def load_case(session: Session, case_id: str) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    return case


def act(session: Session, runtime: ServiceRuntime, *, case_id: str, action: str, principal: Principal,
        data: dict[str, Any], expected_version: int | None = None) -> Case:
    """Apply ``action`` to the case; returns the case after it."""
    case = load_case(session, case_id)
    authorize(session, principal, case, action)
    if expected_version is not None and expected_version != case.row_version:
        raise Conflict(f"case {case.display_no} changed (version {case.row_version}, you had {expected_version}); "
                       f"reload it and try again", workflow.allowed_actions(case.status, case.statutory_type))
    try:
        target = workflow.transition(case.status, action, previous=case.previous_status,
                                     statutory_type=case.statutory_type)
    except workflow.IllegalTransition as exc:
        raise Conflict(str(exc), exc.allowed) from None
    now = clock.now()
    ctx = Ctx(session=session, runtime=runtime, case=case, principal=principal, now=now,
              snap=snapshot(session, runtime.extras.setdefault("assign_cache", {})), previous=case.status, target=target)
    reason = HANDLERS[action](ctx, data)
    case.status = ctx.target
    case.updated_at = now
    spec = workflow.ACTIONS[action]
    timeline.record(session, runtime, case, action=action, label=spec.label, previous=ctx.previous,
                    actor_id=principal.user_id, actor_name=principal.username, actor_role=principal.role, at=now,
                    reason=reason, data={**{k: v for k, v in data.items() if k != "expected_version"},
                                         **ctx.event_data})
    session.flush()
    return case


def require_text(data: dict, key: str, label: str) -> str:
    value = str(data.get(key) or "").strip()
    if not value:
        raise BadInput(f"{label}不能为空", {key: ["required"]})
    return value


def require_past_date(ctx: Ctx, value: date | None, key: str, *, not_before: date | None = None) -> date:
    if value is None:
        raise BadInput(f"{key} is required", {key: ["required"]})
    if value > ctx.today:
        raise BadInput(f"{key} {value.isoformat()} lies in the future", {key: ["must not be in the future"]})
    if not_before is not None and value < not_before:
        raise BadInput(f"{key} {value.isoformat()} is before {not_before.isoformat()}",
                       {key: [f"must not be before {not_before.isoformat()}"]})
    return value
