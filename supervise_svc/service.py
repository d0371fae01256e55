"""supervise_svc projections: fold intake's and assign's events into the case read model (案件视图).

- ``petition.registered`` and ``case.assigned`` may arrive in either order; each fills its own
  columns, and its raw payload is kept (``supervise_raw_events``) so a rebuild reads no other service.
- ``case.action_recorded`` is stored (``case_actions``) and folded: the action's particulars
  (opinion, evaluation, closure report, commitments …) always, each kept by its own time; the status,
  closure, leader and the deadline stages (``supervise_case_stages``) only when the action is newer than
  the last one folded, by (``at``, ``seq``): actions of one instant may arrive in any order (``is_newer``).
- Detection on projection: reflow (回流) at registration, dissatisfaction (不满意) at evaluation,
  a perfunctory closure report (敷衍上报) at submit_closure — see ``checks``.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from shared import clock
from shared.calendar import deadline_end
from shared.contracts import (PAYLOADS, CaseActionRecorded, CaseAssigned, DirectoryChanged, PetitionRegistered,
                              comes_after)
from shared.runtime import ServiceRuntime
from supervise_svc.models import (CaseAction, CaseStageView, CaseView, DirectoryPerson, DirectoryUnit, RawEvent)

#: Case states in which the case is 办结 (closed) for supervision.
CLOSED_STATES = frozenset({"已办结", "已存档", "复核已完成", "终结"})
#: Stage kinds whose due is the case's headline deadline.
HEADLINE_KINDS = ("handling", "assigned")
#: Stage kinds the scorecard counts -> the case view's (due, closed) slot columns (``deadline_columns``).
SCORED_SLOTS = {"acceptance_notice": ("acceptance_due_at", "acceptance_closed_at"),
                "handling": ("handling_due_at", "handling_closed_at"),
                "assigned": ("assigned_due_at", "assigned_closed_at"),
                "evaluation": ("evaluation_due_at", None)}


def deadline_columns(rows) -> dict:
    """The case view's deadline slots from the case's stage rows of the scored kinds.

    ``rows``: (kind, due_at, closed_at) of every row (open or closed) of the case.  Each scored kind
    with exactly one row fills its slot; when some kind has more than one row (a reroute opened a
    second 受理告知, a reopened cycle a second 办理 …) every slot is NULL and ``deadline_rows`` is set:
    the scorecard then counts the case from its stage rows, so no row is ever lost.
    """
    by_kind: dict[str, list] = {}
    for kind, due, closed in rows:
        if kind in SCORED_SLOTS:
            by_kind.setdefault(kind, []).append((due, closed))
    out = {col: None for pair in SCORED_SLOTS.values() for col in pair if col}
    out["deadline_rows"] = any(len(found) > 1 for found in by_kind.values())
    if out["deadline_rows"]:
        return out
    for kind, [(due, closed)] in by_kind.items():
        due_col, closed_col = SCORED_SLOTS[kind]
        out[due_col] = due
        if closed_col:
            out[closed_col] = closed
    return out


def _dump(message_type: str, payload) -> dict:
    return PAYLOADS[(message_type, 1)]().dump(payload)


def _load(message_type: str, data: dict):
    return PAYLOADS[(message_type, 1)]().load(data)


def _keep_raw(session: Session, kind: str, petition_id: str, payload) -> None:
    row = session.get(RawEvent, (kind, petition_id))
    if row is None:
        session.add(RawEvent(kind=kind, petition_id=petition_id, payload=_dump(kind, payload),
                             received_at=clock.now()))
    else:
        row.payload = _dump(kind, payload)


def _view(session: Session, petition_id: str, **defaults) -> CaseView:
    view = session.get(CaseView, petition_id)
    if view is None:
        view = CaseView(petition_id=petition_id, **defaults)
        session.add(view)
    return view


def project_petition_registered(session: Session, event: PetitionRegistered, *, runtime: ServiceRuntime | None = None,
                                keep: bool = True) -> CaseView:
    """Fill the registration columns; with a runtime, run the reflow check (化解后回流)."""
    if keep:
        _keep_raw(session, "petition.registered", event.petition_id, event)
    view = _view(session, event.petition_id, status="registered")
    flags = dict(event.flags or {})
    view.display_no, view.region_code, view.category = event.display_no, event.region_code, event.category
    view.registered_at, view.request_text, view.flags = event.registered_at, event.request_text, flags
    view.channel, view.purpose, view.statutory_type = event.channel, event.purpose, event.statutory_type
    view.legal_litigation, view.group_visit = bool(event.legal_litigation), bool(event.group_visit)
    view.cross_level, view.reflow = bool(flags.get("cross_level")), bool(flags.get("reflow"))
    view.repeat_of = flags.get("repeat_of")
    if view.status is None:
        view.status = "registered"
    session.flush()
    if runtime is not None and (view.repeat_of or view.reflow):
        from supervise_svc import checks

        checks.check_reflow(session, runtime, view, now=event.registered_at)
    return view


def project_case_assigned(session: Session, event: CaseAssigned, *, keep: bool = True) -> CaseView:
    if keep:
        _keep_raw(session, "case.assigned", event.petition_id, event)
    view = _view(session, event.petition_id, flags={})
    view.display_no, view.region_code, view.category = event.display_no, event.region_code, event.category
    view.case_id, view.unit_id, view.unit_name = event.case_id, event.unit_id, event.unit_name
    view.assigned_at, view.due_at, view.deadline_basis = event.assigned_at, event.due_at, event.deadline_basis
    view.leader_id, view.leader_name = event.leader_id, event.leader_name
    view.mode, view.in_clock = event.mode, bool(event.in_clock)
    if view.status in (None, "registered"):
        view.status = "assigned"
    return view


def project_directory_changed(session: Session, event: DirectoryChanged) -> int:
    """Keep a copy of the directory: apply each record only if its version is newer than ours."""
    applied = 0
    units = {u.id: u for u in session.scalars(select(DirectoryUnit).where(
        DirectoryUnit.id.in_([d["id"] for d in event.units])))} if event.units else {}
    people = {p.id: p for p in session.scalars(select(DirectoryPerson).where(
        DirectoryPerson.id.in_([d["id"] for d in event.people])))} if event.people else {}
    for data in event.units:
        row = units.get(data["id"])
        if row is not None and row.version >= event.version:
            continue
        row = row or DirectoryUnit(id=data["id"])
        row.name, row.kind, row.level, row.region_code = data["name"], data["kind"], data["level"], data["region_code"]
        row.parent_id, row.peer_group = data.get("parent_id"), data.get("peer_group")
        row.population = data.get("population")
        row.active, row.version = bool(data.get("active", True)), event.version
        session.add(row)
        applied += 1
    for data in event.people:
        row = people.get(data["id"])
        if row is not None and row.version >= event.version:
            continue
        row = row or DirectoryPerson(id=data["id"])
        row.unit_id, row.name, row.post = data["unit_id"], data["name"], data["post"]
        row.title, row.leader = data.get("title") or "", bool(data.get("leader"))
        row.active, row.version = bool(data.get("active", True)), event.version
        session.add(row)
        applied += 1
    for model, ids in ((DirectoryUnit, event.removed_units), (DirectoryPerson, event.removed_people)):
        for rid in ids or ():
            row = session.get(model, rid)
            if row is not None and row.version < event.version:
                row.active, row.version = False, event.version
                applied += 1
    return applied


# ---------------------------------------------------------------- case actions


def _iso(value) -> datetime | None:
    if value in (None, ""):
        return None
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def commitments_due(commitments: list[dict], tz: str) -> datetime | None:
    """The earliest end of the due day of an undone commitment not yet found overdue."""
    from datetime import date

    dues = [deadline_end(date.fromisoformat(str(c["due_date"])[:10]), tz) for c in commitments
            if not c.get("done") and not c.get("found") and c.get("due_date")]
    return min(dues) if dues else None


def project_case_action(session: Session, event: CaseActionRecorded, event_id: str, *,
                        runtime: ServiceRuntime | None = None, tz: str = "Asia/Shanghai",
                        keep: bool = True) -> CaseView:
    """Record the action, fold it into the case view and its stages; run the checks that fire on it."""
    if keep:
        if session.get(CaseAction, event_id) is not None:
            return session.get(CaseView, event.petition_id)
        ordinal = (session.scalar(select(func.max(CaseAction.ordinal))) or 0) + 1
        session.add(CaseAction(event_id=event_id, case_id=event.case_id, action=event.action, status=event.status,
                               at=event.at, actor=event.actor, reason=event.reason, data=dict(event.data),
                               stages=list(event.stages), petition_id=event.petition_id,
                               payload=_dump("case.action_recorded", event), ordinal=ordinal))
    view = session.get(CaseView, event.petition_id)
    if view is None:  # the action overtook case.assigned
        view = CaseView(petition_id=event.petition_id, display_no=event.display_no, region_code=event.region_code,
                        category="", flags={}, status="assigned", case_id=event.case_id, unit_id=event.unit_id)
        session.add(view)
    view.case_id = view.case_id or event.case_id
    data = dict(event.data or {})
    newer = is_newer(view, event)
    _fold_particulars(session, view, event, data, tz, newer=newer)
    if newer:
        view.case_state = event.status
        if event.leader_id:
            view.leader_id = event.leader_id
        if event.unit_id and view.unit_id and event.unit_id != view.unit_id:  # a reroute arriving late
            view.unit_id = event.unit_id
            unit = session.get(DirectoryUnit, event.unit_id)
            view.unit_name = unit.name if unit else view.unit_name
        if event.status in CLOSED_STATES:
            view.status = "closed"
            if view.closed_at is None:
                view.closed_at = event.at
                view.resolution = data.get("resolution") or view.resolution or "replied"
        closed_late = _fold_stages(session, view, event)
        view.last_event_at, view.last_event_seq = event.at, event.seq
    else:
        closed_late = []
    session.flush()
    if runtime is not None:
        from supervise_svc import checks

        checks.on_action(session, runtime, view, event, data)
        checks.on_closed_late(session, runtime, view, closed_late, at=event.at)
    return view


def is_newer(view: CaseView, event: CaseActionRecorded) -> bool:
    """The action is after the last one folded into the view's state and stages (``comes_after``:
    by (at, seq) against ``last_event_at``, ``last_event_seq``)."""
    return comes_after(event.at, event.seq, view.last_event_at, view.last_event_seq)


def _later(current: datetime | None, at: datetime) -> bool:
    """``at`` is not before ``current`` (an action of its kind folded earlier): its particulars replace them."""
    return current is None or at >= current


def _fold_particulars(session: Session, view: CaseView, event: CaseActionRecorded, data: dict, tz: str, *,
                      newer: bool = True) -> None:
    """The action's particulars, whatever its place: each kept by its own time (the latest opinion,
    service, grade, closure report; the first acceptance) so that the delivery order does not matter;
    what only the case's last action may set (unit, leader, resolution) only when ``newer``."""
    action, at = event.action, event.at
    if action == "reroute":
        if newer:
            view.unit_id = event.unit_id
            unit = session.get(DirectoryUnit, event.unit_id)
            view.unit_name = unit.name if unit else data.get("unit_name") or view.unit_name
    elif action == "assign_leader":
        leader = data.get("leader_id") or event.leader_id
        if newer:
            view.leader_id = leader
        if view.leader_id == leader:  # its name, also when a later action brought the id first
            view.leader_name = data.get("leader_name") or view.leader_name
    elif action == "accept":
        view.accepted_at = min(view.accepted_at, at) if view.accepted_at else at
    elif action == "issue_opinion" and _later(view.opinion_at, at):
        view.opinion_at, view.opinion_outcome = at, data.get("outcome")
        view.truth = data.get("truth") or view.truth
        view.commitments = [{"content": c.get("content", ""), "due_date": str(c.get("due_date", ""))[:10],
                             "done": False, "done_at": None} for c in data.get("commitments") or []]
        view.commitments_due_at = commitments_due(view.commitments, tz)
    elif action == "serve":
        view.served_at = max(view.served_at, at) if view.served_at else at
    elif action == "evaluate" and data.get("target", "handling_unit") == "handling_unit" \
            and _later(view.evaluated_at, at):
        view.evaluation_grade, view.evaluated_at = data.get("grade"), at
    elif action == "submit_closure" and _later(view.closure_submitted_at, at):
        view.closure_submitted_at = at
        view.closure_perfunctory = bool(data.get("perfunctory"))
        view.closure_failed = list(data.get("failed") or [])
    elif action == "fulfil_commitment":
        index = data.get("index")
        commitments = [dict(c) for c in view.commitments or []]
        if isinstance(index, int) and 0 <= index < len(commitments):
            commitments[index].update(done=True, done_at=at.isoformat())
            view.commitments = commitments
            view.commitments_due_at = commitments_due(commitments, tz)
    elif action == "record_cessation":
        view.ceased = True
    elif action in ("request_review", "request_recheck") and view.closed_at is not None:
        view.cycle = (view.cycle or 1) + 1
    if action == "sign_off" and data.get("resolution") and newer:
        view.resolution = data["resolution"]


def _fold_stages(session: Session, view: CaseView, event: CaseActionRecorded) -> list[CaseStageView]:
    """Fold the event's stages into the case's stage rows; returns the rows it closed after their due, not
    yet examined by the overdue sweep (a deadline that passed between two sweeps: check 1 is still due)."""
    open_rows = {s.kind: s for s in session.scalars(select(CaseStageView).where(
        CaseStageView.case_id == event.case_id, CaseStageView.closed_at.is_(None)))}
    reported = {s["kind"]: s for s in event.stages or []}
    scored_changed = False
    closed_late = []
    for kind, row in open_rows.items():
        if kind not in reported:
            row.closed_at = event.at
            if row.due_at is not None and event.at > row.due_at and row.overdue_found_at is None \
                    and not row.paused:
                closed_late.append(row)
            scored_changed = scored_changed or kind in SCORED_SLOTS
            if kind == "evaluation" and view.evaluated_at is None and row.due_at is not None and event.at > row.due_at:
                view.evaluation_expired = True
    for kind, s in reported.items():
        paused = bool(s.get("paused"))
        due = None if paused else _iso(s.get("due_at"))
        row = open_rows.get(kind)
        if row is None:
            row = CaseStageView(case_id=event.case_id, petition_id=event.petition_id, unit_id=view.unit_id or event.unit_id,
                                region_code=event.region_code, kind=kind, opened_at=event.at)
            session.add(row)
            scored_changed = scored_changed or kind in SCORED_SLOTS
        elif row.due_at != due:
            row.overdue_found_at = None  # a new deadline may be missed anew
            scored_changed = scored_changed or kind in SCORED_SLOTS
        row.unit_id = view.unit_id or event.unit_id
        row.due_at, row.warn_at, row.paused = due, _iso(s.get("warn_at")), paused
        row.basis, row.policy = s.get("basis") or "", s.get("policy") or ""
        if kind in HEADLINE_KINDS and due is not None:
            view.due_at, view.deadline_basis = due, row.basis or view.deadline_basis
    if scored_changed:
        session.flush()
        rows = session.execute(select(CaseStageView.kind, CaseStageView.due_at, CaseStageView.closed_at).where(
            CaseStageView.case_id == event.case_id, CaseStageView.kind.in_(tuple(SCORED_SLOTS))))
        was_multi = bool(view.deadline_rows)
        for column, value in deadline_columns(rows).items():
            setattr(view, column, value)
        if view.deadline_rows or was_multi:  # the case's scored stage rows carry the flag (scorecard index)
            session.execute(update(CaseStageView).where(
                CaseStageView.case_id == event.case_id, CaseStageView.kind.in_(tuple(SCORED_SLOTS)),
                CaseStageView.deadline_rows.is_not(bool(view.deadline_rows))).values(deadline_rows=view.deadline_rows))
    return closed_late


# ---------------------------------------------------------------- rebuild


def rebuild(session: Session, runtime: ServiceRuntime) -> dict[str, int]:
    """Truncate the projection (case views and stages) and replay the stored registrations,
    assignments and case actions (no checks fire: findings are kept as they are)."""
    from supervise_svc.scores import facts

    with facts.suspended(session):  # the scorecard facts recomputed once at the end, not per flush
        counts = _replay(session, runtime)
    facts.rebuild_all(session)
    return counts


def _replay(session: Session, runtime: ServiceRuntime) -> dict[str, int]:
    session.execute(delete(CaseStageView))
    session.execute(delete(CaseView))
    session.flush()
    counts = {"petition.registered": 0, "case.assigned": 0, "case.action_recorded": 0}
    for kind in ("petition.registered", "case.assigned"):
        for row in session.scalars(select(RawEvent).where(RawEvent.kind == kind).order_by(RawEvent.received_at)):
            payload = _load(kind, row.payload)
            if kind == "petition.registered":
                project_petition_registered(session, payload, keep=False)
            else:
                project_case_assigned(session, payload, keep=False)
            counts[kind] += 1
    session.flush()
    for row in session.scalars(select(CaseAction).order_by(CaseAction.ordinal, CaseAction.event_id)):
        if not row.payload:
            continue
        project_case_action(session, _load("case.action_recorded", row.payload), row.event_id, keep=False,
                            tz=runtime.settings.timezone)
        counts["case.action_recorded"] += 1
    _restore_check_markers(session, runtime)
    return counts


def _restore_check_markers(session: Session, runtime: ServiceRuntime) -> None:
    """What the sweeps and checks derived (not the events) survives a rebuild: stages and commitments
    already found stay found, an expired evaluation window stays 超期未评价, a reflow bumped the
    earlier case's cycle."""
    from supervise_svc.checks import OVERDUE_KINDS
    from supervise_svc.models import Finding

    now = clock.now()
    found = {(f.case_id, f.cycle) for f in session.scalars(select(Finding).where(Finding.rule.in_(
        ("overdue", "not_carried_out")), Finding.case_id.is_not(None)))}
    views = {v.petition_id: v for v in session.scalars(select(CaseView))}
    for stage in session.scalars(select(CaseStageView).where(CaseStageView.closed_at.is_(None),
                                                             CaseStageView.due_at.is_not(None),
                                                             CaseStageView.due_at <= now)):
        if stage.kind in OVERDUE_KINDS:
            if (stage.case_id, f"{stage.kind}:{int(stage.due_at.timestamp())}") in found:
                stage.overdue_found_at = now
            continue
        stage.overdue_found_at = now
        view = views.get(stage.petition_id)
        if stage.kind == "evaluation" and view is not None and view.evaluated_at is None:
            view.evaluation_expired = True
    for view in views.values():
        if view.commitments_due_at is None:
            continue
        commitments = [dict(c) for c in view.commitments]
        for i, c in enumerate(commitments):
            if (view.case_id, f"commitment:{i}") in found:
                c["found"] = True
        view.commitments = commitments
        view.commitments_due_at = commitments_due(commitments, runtime.settings.timezone)
    for petition_id in session.scalars(select(Finding.petition_id).where(Finding.rule == "reflow")):
        if petition_id in views:
            views[petition_id].cycle += 1
    reflow_cycles = set(session.scalars(select(Finding.cycle).where(Finding.rule == "reflow")))
    for view in views.values():
        if view.petition_id in reflow_cycles:
            view.reflow_checked = True
