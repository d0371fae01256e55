"""Follow-up calls (回访) of closed cases: recording a call, the worklist of calls due.

A call recording 不满意 opens a ``dissatisfied`` finding; one finding the opinion not carried out
(carried_out false) opens a ``not_carried_out`` finding — both against the case, cycle ``c{cycle}``,
so they dedupe with the same rule/subject/cycle whoever detected it first.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from shared.db import new_id
from supervise_svc.models import CaseView
from supervise_svc.scores.domain import FollowUpRule
from supervise_svc.scoring_models import FollowUp

METHODS = ("电话回访", "上门回访", "短信回访")
GRADES = ("满意", "基本满意", "不满意")


class NotFound(Exception):
    pass


class BadInput(Exception):
    def __init__(self, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


def case_by_case_id(session: Session, case_id: str) -> CaseView:
    view = session.scalar(select(CaseView).where(CaseView.case_id == case_id))
    if view is None:
        raise NotFound(f"案件 {case_id} 不存在")
    return view


def record_followup(session: Session, runtime, *, case_id: str, at: datetime, method: str, reached: bool,
                    satisfied: str | None, carried_out: bool | None, remarks: str, caller: str,
                    now: datetime) -> FollowUp:
    """Record one call of a closed case and open the findings it reveals."""
    from supervise_svc.findings import open_finding

    view = case_by_case_id(session, case_id)
    if view.closed_at is None:
        raise BadInput("案件尚未办结，不能回访", {"case_id": ["案件尚未办结"]})
    errors: dict[str, list[str]] = {}
    if method not in METHODS:
        errors["method"] = [f"回访方式须为 {'、'.join(METHODS)} 之一"]
    if satisfied is not None and satisfied not in GRADES:
        errors["satisfied"] = [f"满意度须为 {'、'.join(GRADES)} 之一"]
    if not reached and (satisfied is not None or carried_out is not None):
        errors["reached"] = ["未联系上信访人时不能填写满意度或落实情况"]
    if at > now:
        errors["at"] = ["回访时间不能晚于当前时间"]
    if errors:
        raise BadInput("回访记录有误", errors)
    call = FollowUp(id=new_id(), case_id=case_id, petition_id=view.petition_id, cycle=view.cycle,
                    region_code=view.region_code, unit_id=view.unit_id, at=at, method=method, reached=reached,
                    satisfied=satisfied, carried_out=carried_out, remarks=remarks, caller=caller,
                    recorded_at=now, findings=[])
    session.add(call)
    evidence = {"source": "followup", "followup_id": call.id, "at": at.isoformat(), "method": method,
                "satisfied": satisfied, "carried_out": carried_out, "remarks": remarks, "caller": caller}
    opened = []
    common = dict(subject_kind="case", subject_id=case_id, cycle=f"c{view.cycle}", unit_id=view.unit_id or "",
                  region_code=view.region_code, detected_at=now, case_id=case_id, petition_id=view.petition_id,
                  display_no=view.display_no, leader_id=view.leader_id)
    if satisfied == "不满意":
        finding = open_finding(session, runtime, rule="dissatisfied", evidence={**evidence, "text": "回访中群众不满意"},
                               reason=f"{method}：群众不满意。{remarks}".strip(), **common)
        if finding is not None:
            opened.append(finding.id)
    if carried_out is False:
        finding = open_finding(session, runtime, rule="not_carried_out",
                               evidence={**evidence, "text": "回访发现处理意见未落实"},
                               reason=f"{method}：处理意见未落实。{remarks}".strip(), **common)
        if finding is not None:
            opened.append(finding.id)
    call.findings = opened
    session.flush()
    return call


def followups_of(session: Session, case_id: str) -> list[FollowUp]:
    case_by_case_id(session, case_id)
    return list(session.scalars(select(FollowUp).where(FollowUp.case_id == case_id).order_by(FollowUp.at)))


@dataclass(frozen=True)
class WorkItem:
    view: CaseView
    attempts: int
    last_at: datetime | None
    due_since: datetime
    reason: str


def worklist(session: Session, *, rule: FollowUpRule, prefix: str, now: datetime, limit: int = 500) -> list[WorkItem]:
    """Closed cases due for a call: closed ≥ ``after_days`` ago (within ``lookback_days``), selected by
    category / statutory type / the hash sample, and either never called in their cycle or last
    call unreached with fewer than ``max_attempts`` attempts.  Oldest closure first.
    """
    latest = now - timedelta(days=rule.after_days)
    earliest = now - timedelta(days=rule.lookback_days)
    calls = (select(FollowUp.case_id, FollowUp.cycle, func.count().label("attempts"),
                    func.max(FollowUp.at).label("last_at"),
                    func.max(case((FollowUp.reached.is_(True), 1), else_=0)).label("any_reached"))
             .group_by(FollowUp.case_id, FollowUp.cycle).subquery())
    stmt = (select(CaseView, calls.c.attempts, calls.c.last_at, calls.c.any_reached)
            .outerjoin(calls, (calls.c.case_id == CaseView.case_id) & (calls.c.cycle == CaseView.cycle))
            .where(CaseView.case_id.is_not(None), CaseView.closed_at.is_not(None), CaseView.closed_at <= latest,
                   CaseView.closed_at >= earliest, CaseView.legal_litigation.is_(False),
                   CaseView.region_code.startswith(prefix))
            .order_by(CaseView.closed_at, CaseView.case_id))
    items: list[WorkItem] = []
    for view, attempts, last_at, any_reached in session.execute(stmt):
        if not rule.selects(case_id=view.case_id, category=view.category, statutory_type=view.statutory_type):
            continue
        attempts = attempts or 0
        if any_reached or attempts >= rule.max_attempts:
            continue
        if view.category in rule.categories:
            reason = f"内容分类 {view.category} 全部回访"
        elif view.statutory_type in rule.statutory_types:
            reason = f"{view.statutory_type} 全部回访"
        else:
            reason = f"抽样回访（{rule.sample_percent:g}%）"
        items.append(WorkItem(view=view, attempts=attempts, last_at=last_at,
                              due_since=view.closed_at + timedelta(days=rule.after_days), reason=reason))
        if len(items) >= limit:
            break
    return items
