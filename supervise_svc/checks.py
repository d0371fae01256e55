"""五必查 checks 1–4 (domain.md §6); the 5th (工作被动落后) is the scorecards'.

1. overdue 没有按期化解 — an open, unpaused stage of the unit's own clock (register_route,
   acceptance_notice, handling, assigned, review_decision, recheck_decision) is past its due_at.
   Windows that are a right, not a duty, never count: the petitioner's (review_request,
   recheck_request, evaluation) and the unit's 5-working-day window to object (objection — a unit
   that lets it pass has simply lost the right to send the case back).  Subject = the case; cycle = ``{kind}:{due epoch}`` so a new deadline can be missed anew.
   Found by ``overdue_sweep`` (partial index, SKIP LOCKED claims); also raises 超期提醒 to the unit.
2. reflow 化解后回流 — a registration flagged reflow, or naming (repeat_of) an earlier petition whose
   case had been closed or reported resolved (closure report submitted) before it was registered: against the EARLIER case's unit and leader; cycle = the new petition id.
   At projection, and again by ``reflow_sweep`` while the earlier case's closure is not yet known.
3. dissatisfied 回访中群众不满意 — an evaluation graded 不满意 (either target); cycle = ``c{case cycle}``.
4. not_carried_out 应付上报化解意见不落实 — a closure report with the checklist failing (perfunctory;
   cycle ``closure:c{case cycle}``), or a commitment of the opinion past its due date undone
   (``commitment_sweep``; cycle ``commitment:{index}``).
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared import clock
from shared.calendar import deadline_end
from shared.contracts import CaseActionRecorded
from shared.db import is_postgres
from shared.runtime import ServiceRuntime, SweepJob
from supervise_svc import interviews, ladder
from supervise_svc.findings import check_spec, open_finding, open_findings
from supervise_svc.models import CaseStageView, CaseView
from supervise_svc.scores import facts
from supervise_svc.service import commitments_due

log = logging.getLogger(__name__)

#: Stage kinds whose missed due is a finding (the unit's or the petition department's own clock).
OVERDUE_KINDS = frozenset({"register_route", "acceptance_notice", "handling", "assigned",
                           "review_decision", "recheck_decision"})
STAGE_LABELS = {
    "acceptance_notice": "受理告知", "objection": "异议退回", "handling": "办理", "assigned": "交办办理",
    "review_request": "申请复查", "review_decision": "复查办理", "recheck_request": "申请复核",
    "recheck_decision": "复核办理", "evaluation": "满意度评价", "register_route": "登记转交",
}
#: Stage rows claimed per transaction by the overdue sweep.
OVERDUE_BATCH = 500
#: Upper bound of batches per run (the next run continues).
OVERDUE_MAX_BATCHES = 200
#: A repeat petition's earlier case is re-examined for this long (its closure may be reported late).
REFLOW_RECHECK_DAYS = 30
CASE_BATCH = 200


def _local(at: datetime, tz: str = "Asia/Shanghai") -> str:
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz)).strftime("%Y年%m月%d日%H时%M分")


# ---------------------------------------------------------------- 1. overdue


def _claim_due(session: Session, now: datetime, limit: int) -> list:
    """The next due, open, unexamined stages with their case view (one SELECT through the partial index,
    ``FOR UPDATE OF supervise_case_stages SKIP LOCKED`` on PostgreSQL so concurrent sweeps split the work)."""
    s, v = CaseStageView, CaseView
    stmt = (select(s.id, s.case_id, s.petition_id, s.unit_id, s.region_code, s.kind, s.opened_at, s.due_at, s.basis,
                   s.policy, s.paused, v.petition_id.label("view_petition_id"), v.display_no,
                   v.region_code.label("view_region_code"), v.leader_id, v.evaluated_at)
            .outerjoin(v, v.petition_id == s.petition_id)
            .where(s.closed_at.is_(None), s.overdue_found_at.is_(None), s.due_at.is_not(None), s.due_at <= now)
            .order_by(s.due_at, s.id).limit(limit))
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True, of=s)
    return list(session.execute(stmt))


def overdue_spec(stage, tz: str, *, closed_at: datetime | None = None) -> dict:
    """``open_finding``'s arguments (but ``detected_at``) for one past-due stage row of ``_claim_due``, or
    for a stage ``closed_at`` after its due before any sweep saw it open (``on_closed_late``)."""
    has_view = stage.view_petition_id is not None
    label = STAGE_LABELS.get(stage.kind, stage.kind)
    display = stage.display_no if has_view else stage.case_id
    state = f"该环节至{_local(closed_at, tz)}才完成（逾期办理）" if closed_at else "该环节仍未完成"
    text = f"信访件{display}的{label}期限已于{_local(stage.due_at, tz)}届满，{state}（依据：{stage.basis or '—'}）"
    evidence = {"stage": stage.kind, "stage_label": label, "due_at": stage.due_at.isoformat(),
                "opened_at": stage.opened_at.isoformat(), "basis": stage.basis, "policy": stage.policy, "text": text}
    if closed_at:
        evidence["closed_at"] = closed_at.isoformat()
    spec = dict(rule="overdue", subject_kind="case", subject_id=stage.case_id,
                cycle=f"{stage.kind}:{int(stage.due_at.timestamp())}", unit_id=stage.unit_id,
                region_code=stage.view_region_code if has_view else stage.region_code, evidence=evidence,
                case_id=stage.case_id, petition_id=stage.petition_id,
                display_no=stage.display_no if has_view else None, leader_id=stage.leader_id if has_view else None)
    check_spec(**spec)
    return spec


def on_closed_late(session: Session, runtime: ServiceRuntime, view: CaseView, rows: list[CaseStageView], *,
                   at: datetime) -> int:
    """Check 1 for stages an action closed after their due that no sweep had examined (the deadline passed
    between two sweeps, or while the sweeps were not running): they were overdue all the same."""
    opened = 0
    for row in rows:
        if row.kind not in OVERDUE_KINDS:
            continue
        stage = SimpleNamespace(
            case_id=row.case_id, petition_id=row.petition_id, unit_id=row.unit_id, region_code=row.region_code,
            kind=row.kind, opened_at=row.opened_at, due_at=row.due_at, basis=row.basis, policy=row.policy,
            view_petition_id=view.petition_id, display_no=view.display_no, view_region_code=view.region_code,
            leader_id=view.leader_id)
        opened += open_finding(session, runtime, detected_at=at,
                               **overdue_spec(stage, runtime.settings.timezone, closed_at=row.closed_at)) is not None
        row.overdue_found_at = at
    return opened


def open_batch(session: Session, runtime: ServiceRuntime, specs: list[tuple[object, dict]], now: datetime,
               what: str) -> tuple[int, int]:
    """Open the findings of ``specs`` [(row key, spec)] set-based; if that fails, row by row, each in its own
    savepoint (a bad row is logged and skipped).  Returns (opened, failed)."""
    if not specs:
        return 0, 0
    try:
        with session.begin_nested():
            return len(open_findings(session, runtime, [spec for _, spec in specs], detected_at=now)), 0
    except Exception:
        log.exception("%s: opening %d findings at once failed; opening them one by one", what, len(specs))
    opened = failed = 0
    for key, spec in specs:
        try:
            with session.begin_nested():
                opened += open_finding(session, runtime, detected_at=now, **spec) is not None
        except Exception:
            log.exception("%s: finding for %s could not be opened; skipped", what, key)
            failed += 1
    return opened, failed


def overdue_sweep(runtime: ServiceRuntime) -> dict[str, int]:
    """Check 1 over every open stage that fell due since the last run; one bad row is logged and skipped.

    Per claimed batch (``OVERDUE_BATCH`` rows, one SELECT joined with the case views): each row's finding
    is built in Python (a row that cannot be built is logged, counted ``failed`` and marked examined: it is
    not retried, its error is in the log — a changed due_at of that stage clears the mark and retries it);
    the batch's findings are opened set-based (``findings.open_findings``), falling back to one savepoint
    per row if that fails; an expired evaluation window marks its case 超期未评价 (one UPDATE); every
    claimed row is marked examined in one UPDATE.
    """
    tz = runtime.settings.timezone
    opened = examined = failed = 0
    for _ in range(OVERDUE_MAX_BATCHES):
        now = clock.now()
        with runtime.uow() as session:
            claimed = _claim_due(session, now, OVERDUE_BATCH)
            if not claimed:
                break
            expired = sorted({s.petition_id for s in claimed
                              if s.kind == "evaluation" and s.view_petition_id is not None and s.evaluated_at is None})
            if expired:
                session.execute(update(CaseView).where(CaseView.petition_id.in_(expired), CaseView.evaluated_at.is_(None))
                                .values(evaluation_expired=True), execution_options={"synchronize_session": False})
                facts.refresh(session, expired)  # 超期未评价 counts in the month the window was due
            specs = []
            for stage in claimed:
                if stage.kind not in OVERDUE_KINDS or stage.paused:
                    examined += 1
                    continue
                try:
                    specs.append((stage.id, overdue_spec(stage, tz)))
                except Exception:
                    log.exception("overdue check of stage %s failed; skipped", stage.id)
                    failed += 1
            n, bad = open_batch(session, runtime, specs, now, "overdue sweep")
            opened, examined, failed = opened + n, examined + len(specs) - bad, failed + bad
            session.execute(update(CaseStageView).where(CaseStageView.id.in_([s.id for s in claimed]))
                            .values(overdue_found_at=now), execution_options={"synchronize_session": False})
        if len(claimed) < OVERDUE_BATCH:
            break
    return {"examined": examined, "opened": opened, "failed": failed}


# ---------------------------------------------------------------- 2. reflow


def check_reflow(session: Session, runtime: ServiceRuntime, view: CaseView, *, now: datetime | None = None) -> bool:
    """Open a reflow finding against the earlier case if it was closed/resolved; mark the view checked
    once decided (left unchecked while the earlier case is unknown or its closure not yet reported)."""
    earlier = session.get(CaseView, view.repeat_of) if view.repeat_of else None
    if earlier is None or earlier.unit_id is None:
        return False
    # Only a return AFTER the earlier case was closed or reported resolved (结案报告报送) is 回流; a repeat
    # filed while it was still being handled is a plain 重复信访, even if the case closes later.
    def before(instant):
        return instant is not None and (view.registered_at is None or instant <= view.registered_at)

    if not (view.reflow or before(earlier.closed_at) or before(earlier.closure_submitted_at)):
        return False
    view.reflow_checked = True
    done = {"resolved": "化解", "replied": "办结"}.get(earlier.resolution or "", "办结")
    text = f"信访件{view.display_no}反映的事项与已{done}的信访件{earlier.display_no}相同，群众再次信访（化解后回流）"
    finding = open_finding(
        session, runtime, rule="reflow", subject_kind="case", subject_id=earlier.case_id or earlier.petition_id,
        cycle=view.petition_id, unit_id=earlier.unit_id, region_code=earlier.region_code,
        evidence={"earlier_display_no": earlier.display_no, "new_display_no": view.display_no,
                  "new_petition_id": view.petition_id,
                  "earlier_closed_at": earlier.closed_at.isoformat() if earlier.closed_at else None,
                  "resolution": earlier.resolution, "flagged_reflow": bool(view.reflow), "text": text},
        detected_at=now or clock.now(), case_id=earlier.case_id, petition_id=earlier.petition_id,
        display_no=earlier.display_no, leader_id=earlier.leader_id)
    if finding is not None:
        earlier.cycle = (earlier.cycle or 1) + 1
    return finding is not None


def reflow_sweep(runtime: ServiceRuntime) -> dict[str, int]:
    """Re-examine repeat petitions whose earlier case's closure was not known at registration."""
    opened = failed = 0
    now = clock.now()
    with runtime.uow() as session:
        stmt = (select(CaseView).where(CaseView.repeat_of.is_not(None), CaseView.reflow_checked.is_(False))
                .order_by(CaseView.registered_at).limit(CASE_BATCH))
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        for view in session.scalars(stmt):
            try:
                with session.begin_nested():
                    opened += check_reflow(session, runtime, view, now=now)
                    if view.registered_at is None or view.registered_at < now - timedelta(days=REFLOW_RECHECK_DAYS):
                        view.reflow_checked = True
            except Exception:
                log.exception("reflow check of petition %s failed; skipped", view.petition_id)
                failed += 1
                view.reflow_checked = True  # never blocks the sweep; the error is in the log
    return {"opened": opened, "failed": failed}


# ---------------------------------------------------------------- 3 and 4 on actions


def on_action(session: Session, runtime: ServiceRuntime, view: CaseView, event: CaseActionRecorded,
              data: dict) -> None:
    if event.action == "evaluate" and data.get("grade") == "不满意":
        target = {"petition_dept": "信访部门", "handling_unit": "责任单位"}.get(data.get("target"), "责任单位")
        text = f"信访人对信访件{view.display_no}的{target}办理评价为不满意" + \
            (f"（{data.get('reason')}）" if data.get("reason") else "")
        open_finding(session, runtime, rule="dissatisfied", subject_kind="case", subject_id=event.case_id,
                     cycle=f"c{view.cycle}", unit_id=view.unit_id or event.unit_id, region_code=view.region_code,
                     evidence={"source": "evaluation", "target": data.get("target"), "grade": "不满意",
                               "reason": data.get("reason") or "", "evaluated_at": event.at.isoformat(),
                               "text": text},
                     detected_at=event.at, case_id=event.case_id, petition_id=event.petition_id,
                     display_no=view.display_no, leader_id=view.leader_id)
    elif event.action == "submit_closure" and data.get("perfunctory"):
        failed = list(data.get("failed") or [])
        text = f"信访件{view.display_no}的结案报告未通过审核（未通过项：{'、'.join(failed) or '—'}），属应付上报"
        open_finding(session, runtime, rule="not_carried_out", subject_kind="case", subject_id=event.case_id,
                     cycle=f"closure:c{view.cycle}", unit_id=view.unit_id or event.unit_id,
                     region_code=view.region_code,
                     evidence={"source": "closure_report", "failed": failed,
                               "missing_documents": list(data.get("missing") or data.get("missing_documents") or []),
                               "submitted_at": event.at.isoformat(), "text": text},
                     detected_at=event.at, case_id=event.case_id, petition_id=event.petition_id,
                     display_no=view.display_no, leader_id=view.leader_id)


def commitment_specs(view: CaseView, now: datetime, tz: str) -> tuple[list[dict], list[dict]]:
    """The findings (``open_finding`` arguments) of ``view``'s undone commitments past their due date, and
    its commitments with those marked ``found``."""
    commitments = [dict(c) for c in view.commitments or []]
    specs = []
    for i, c in enumerate(commitments):
        if c.get("done") or c.get("found") or not c.get("due_date"):
            continue
        due = deadline_end(date.fromisoformat(str(c["due_date"])[:10]), tz)
        if due > now:
            continue
        c["found"] = True
        text = f"信访件{view.display_no}处理意见中承诺的“{c.get('content', '')}”已于{c['due_date']}到期，仍未落实"
        spec = dict(rule="not_carried_out", subject_kind="case", subject_id=view.case_id,
                    cycle=f"commitment:{i}", unit_id=view.unit_id, region_code=view.region_code,
                    evidence={"source": "commitment", "index": i, "content": c.get("content", ""),
                              "due_date": c["due_date"], "text": text},
                    case_id=view.case_id, petition_id=view.petition_id, display_no=view.display_no,
                    leader_id=view.leader_id)
        check_spec(**spec)
        specs.append(spec)
    return specs, commitments


def examine_commitments(session: Session, runtime: ServiceRuntime, view: CaseView, now: datetime) -> int:
    """One case's overdue commitments, opened one by one."""
    tz = runtime.settings.timezone
    specs, commitments = commitment_specs(view, now, tz)
    opened = sum(open_finding(session, runtime, detected_at=now, **spec) is not None for spec in specs)
    view.commitments = commitments
    view.commitments_due_at = commitments_due(commitments, tz)
    return opened


def commitment_sweep(runtime: ServiceRuntime) -> dict[str, int]:
    """Check 4 (commitments): an undone commitment past its due date opens a finding.

    Per claimed batch of cases: their findings are built in Python (a case that cannot be built is logged,
    counted ``failed`` and retried tomorrow) and opened set-based, falling back to one savepoint per finding."""
    tz = runtime.settings.timezone
    opened = failed = 0
    now = clock.now()
    with runtime.uow() as session:
        stmt = (select(CaseView).where(CaseView.commitments_due_at.is_not(None), CaseView.commitments_due_at <= now)
                .order_by(CaseView.commitments_due_at).limit(CASE_BATCH))
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        specs = []
        for view in session.scalars(stmt):
            try:
                found, commitments = commitment_specs(view, now, tz)
                due_next = commitments_due(commitments, tz)
            except Exception:
                log.exception("commitment check of case %s failed; skipped", view.case_id)
                failed += 1
                view.commitments_due_at = now + timedelta(days=1)  # retried tomorrow, not first in line
                continue
            view.commitments, view.commitments_due_at = commitments, due_next
            specs += [((view.case_id, spec["cycle"]), spec) for spec in found]
        session.flush()
        n, bad = open_batch(session, runtime, specs, now, "commitment sweep")
        opened, failed = n, failed + bad
    return {"opened": opened, "failed": failed}


def register(runtime: ServiceRuntime) -> None:
    """The checks and the ladder as periodic jobs (the scheduler runs them every sweep interval)."""
    runtime.sweeps.append(SweepJob("supervise_overdue", overdue_sweep))
    runtime.sweeps.append(SweepJob("supervise_commitments", commitment_sweep))
    runtime.sweeps.append(SweepJob("supervise_reflow", reflow_sweep))
    runtime.sweeps.append(SweepJob("supervise_ladder", ladder.ladder_sweep))
    runtime.sweeps.append(SweepJob("supervise_rectification_items", interviews.item_sweep))
