"""After service: 评价, 结案报告 and 逐级审签, 息诉息访, 存档, 复查, 复核, 终结."""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from assign_svc import documents, stages
from assign_svc.domain import dossier, workflow
from assign_svc.domain.workflow import EVALUATION_TARGETS, GRADES
from assign_svc.handling.core import BadInput, Ctx, handler, require_past_date, require_text
from assign_svc.handling.receipt import _doc

TARGET_LABELS = {"petition_dept": "对信访部门", "handling_unit": "对责任单位"}
REVIEW_OUTCOMES = ("维持", "变更", "撤销")


@handler("evaluate")
def evaluate(ctx: Ctx, data: dict) -> str:
    """满意度评价, one target at a time (信访部门 / 责任单位); both → the 满意度评价表 is filed."""
    target, grade = data.get("target"), data.get("grade")
    if target not in EVALUATION_TARGETS:
        raise BadInput("target must be petition_dept or handling_unit", {"target": list(EVALUATION_TARGETS)})
    if grade not in GRADES:
        raise BadInput("grade must be 满意, 基本满意 or 不满意", {"grade": list(GRADES)})
    reason = str(data.get("reason") or "").strip()
    if grade == "不满意" and not reason:
        raise BadInput("不满意须注明原因", {"reason": ["required when 不满意"]})
    evaluations = dict(ctx.case.evaluations or {})
    evaluations[target] = {"grade": grade, "reason": reason, "at": ctx.now.isoformat(), "by": ctx.principal.username}
    ctx.case.evaluations = evaluations
    if all(t in evaluations for t in EVALUATION_TARGETS):
        stages.close_stages(ctx.session, ctx.case.id, ["evaluation"], at=ctx.now, outcome="evaluated")
        _doc(ctx, "evaluation_form", evaluations=evaluations, target_labels=TARGET_LABELS)
    return f"{TARGET_LABELS[target]}{grade}{('：' + reason) if reason else ''}"


def _signers(ctx: Ctx) -> list[dict]:
    """Level-by-level sign-off: the unit head, the owning leader (if any), then the petition department."""
    signers = [{"level": 1, "role": "unit_head", "label": "责任单位主要负责人"}]
    if ctx.case.leader_id:
        signers.append({"level": 2, "role": "owning_leader", "label": "包案领导", "person_id": ctx.case.leader_id})
    signers.append({"level": len(signers) + 1, "role": "petition_dept", "label": "信访部门审核"})
    return signers


@handler("submit_closure")
def submit_closure(ctx: Ctx, data: dict) -> str:
    """结案报告 with the review checklist; a failing checklist is recorded as 敷衍上报 and cannot be signed."""
    summary = require_text(data, "summary", "办理情况")
    declared = dict(data.get("checklist") or {})
    opinion = ctx.case.opinion or {}
    facts = dossier.ClosureFacts(
        documents=frozenset(documents.held(ctx.session, ctx.case.id)), opinion=opinion,
        served_on=_served_on(ctx), handling_due_at=_handling_due(ctx),
        opinion_issued_at=datetime.fromisoformat(opinion["issued_at"]) if opinion.get("issued_at") else None,
        today=ctx.today, path=workflow.path_of(ctx.case.statutory_type))
    items = dossier.checklist(facts, declared)
    perfunctory = not all(i.passed for i in items)
    resolved, how = _declared_resolution(data)
    ctx.case.closure = {"summary": summary, "checklist": [i.__dict__ for i in items], "perfunctory": perfunctory,
                        "submitted_at": ctx.now.isoformat(), "submitted_by": ctx.principal.username,
                        "signers": _signers(ctx), "signoffs": [], "resolved": resolved, "resolution_reason": how}
    _doc(ctx, "closure_report", summary=summary, checklist=items, perfunctory=perfunctory, resolved=resolved,
         resolution_reason=how)
    ctx.event_data.update({"perfunctory": perfunctory, "resolved": resolved,
                           "failed": [i.key for i in items if not i.passed]})
    return ("结案报告已报送（申报" + ("已化解" if resolved else "已办结，未化解") + "）"
            + ("（审核清单未通过，敷衍上报）" if perfunctory else ""))


# ---------------------------------------------------------------- 办结 vs 化解
#
# 办结 (``replied``): a reply (处理意见书 / 答复意见 / 核查结论) was issued and the case closed.
# 化解 (``resolved``): the matter was substantively resolved.  The closure report declares it
# (``resolved: true`` with how it was resolved); the petition department's final sign-off confirms it
# (``confirm_resolved``, default true).  It cannot be confirmed while the petitioner graded 不满意 (either
# target: the petition department or the handling unit) or a commitment of the opinion is past due and
# undone (五必查 3 and 4): the case then closes as 办结 only, the reasons in ``resolution_blocked``.  A review or re-review decision, or a 终结, closes as ``resolved``
# only when the decision says so (``resolved: true`` with how) and no commitment is overdue.
# 息诉息访 (the petitioner stops) is recorded apart (``cessation``) and is not by itself 化解.
RESOLVED, REPLIED = "resolved", "replied"


def _declared_resolution(data: dict) -> tuple[bool, str]:
    resolved = data.get("resolved")
    if resolved is not None and not isinstance(resolved, bool):
        raise BadInput("resolved must be true or false", {"resolved": ["true or false"]})
    how = str(data.get("resolution_reason") or "").strip()
    if resolved and not how:
        raise BadInput("申报化解须说明化解情况", {"resolution_reason": ["required when resolved is true"]})
    return bool(resolved), how


def _overdue_commitments(ctx: Ctx) -> list[str]:
    from datetime import date
    return [c.get("content", "") for c in (ctx.case.opinion or {}).get("commitments", [])
            if not c.get("done") and date.fromisoformat(str(c["due_date"])) < ctx.today]


def _close_with(ctx: Ctx, declared: bool, how: str, *, blockers: list[str]) -> str:
    """Record how the closing action ended the matter (case row + event data)."""
    overdue = _overdue_commitments(ctx)
    if overdue:
        blockers = [*blockers, "承诺事项逾期未落实：" + "；".join(overdue)]
    resolution = RESOLVED if declared and not blockers else REPLIED
    ctx.case.resolution = resolution
    ctx.event_data["resolution"] = resolution
    if declared and blockers:
        ctx.event_data["resolution_blocked"] = blockers
    if how and resolution == RESOLVED:
        ctx.event_data["resolution_reason"] = how
    return resolution


def _served_on(ctx: Ctx):
    from datetime import date
    record = (ctx.case.service or {}).get("opinion")
    return date.fromisoformat(record["signed_on"]) if record else None


def _handling_due(ctx: Ctx):
    from sqlalchemy import select

    from assign_svc.models import CaseStage
    stmt = (select(CaseStage.due_at).where(CaseStage.case_id == ctx.case.id, CaseStage.kind.in_(["handling", "assigned"]))
            .order_by(CaseStage.started_at.desc()))
    dues = [d for d in ctx.session.scalars(stmt) if d is not None]
    return max(dues) if dues else None


@handler("sign_off")
def sign_off(ctx: Ctx, data: dict) -> str:
    closure = dict(ctx.case.closure or {})
    if not closure:
        raise BadInput("尚未报送结案报告", {"closure": ["submit the closure report first"]})
    if closure.get("perfunctory"):
        raise BadInput("结案报告审核清单未通过（敷衍上报），请补正后重新报送",
                       {"checklist": [i["key"] for i in closure["checklist"] if not i["passed"]]})
    done = list(closure.get("signoffs") or [])
    step = closure["signers"][len(done)]
    principal = ctx.principal
    if principal.role != "admin":
        ok = {"unit_head": principal.role == "leader" and principal.unit_id == ctx.case.unit_id,
              "owning_leader": principal.role == "leader" and _is_owner(ctx),
              "petition_dept": principal.role == "registrar" or _in_petition_dept(ctx)}[step["role"]]
        if not ok:
            from assign_svc.handling.core import Forbidden
            raise Forbidden(f"现在应由{step['label']}审签（第{step['level']}级）")
    done.append({"level": step["level"], "role": step["role"], "by": principal.username, "at": ctx.now.isoformat(),
                 "opinion": str(data.get("opinion") or "同意")})
    closure["signoffs"] = done
    ctx.case.closure = closure
    if len(done) == len(closure["signers"]):
        ctx.target = workflow.CLOSED
        ctx.case.closed_at, ctx.case.reviewed_by = ctx.now, principal.username
        blockers = [f"信访人评价不满意（{TARGET_LABELS[t]}）" for t, e in (ctx.case.evaluations or {}).items()
                    if e.get("grade") == "不满意"]
        if data.get("confirm_resolved") is False:
            blockers.append("信访部门审核未确认化解")
        resolution = _close_with(ctx, bool(closure.get("resolved")), closure.get("resolution_reason", ""),
                                 blockers=blockers)
        closure["resolution"] = resolution
        closure["resolution_blocked"] = ctx.event_data.get("resolution_blocked", [])
        ctx.case.closure = dict(closure)
        return (f"第{step['level']}级审签（{step['label']}）：{done[-1]['opinion']}；"
                + ("确认化解" if resolution == RESOLVED else "办结（未化解）"))
    return f"第{step['level']}级审签（{step['label']}）：{done[-1]['opinion']}"


def _is_owner(ctx: Ctx) -> bool:
    leader = ctx.person(ctx.case.leader_id)
    return leader is not None and (leader.username == ctx.principal.username or leader.unit_id == ctx.principal.unit_id)


def _in_petition_dept(ctx: Ctx) -> bool:
    from assign_svc.models import Unit
    unit = ctx.session.get(Unit, ctx.principal.unit_id) if ctx.principal.unit_id else None
    return unit is not None and unit.kind == "petition_dept"


@handler("fulfil_commitment")
def fulfil_commitment(ctx: Ctx, data: dict) -> str:
    """A commitment of the opinion carried out (落实), with what was done; the checklist's 落实到位 reads it."""
    opinion = dict(ctx.case.opinion or {})
    commitments = [dict(c) for c in opinion.get("commitments", [])]
    index = data.get("index")
    if not isinstance(index, int) or not 0 <= index < len(commitments):
        raise BadInput("index must name a commitment of the opinion", {"index": [f"0 to {len(commitments) - 1}"]})
    note = require_text(data, "reason", "落实情况")
    commitments[index].update(done=True, done_at=ctx.now.isoformat(), note=note, by=ctx.principal.username)
    opinion["commitments"] = commitments
    ctx.case.opinion = opinion
    return f"{commitments[index]['content']}：{note}"


@handler("record_cessation")
def record_cessation(ctx: Ctx, data: dict) -> str:
    statement = require_text(data, "statement", "息诉息访意见")
    signed_on = require_past_date(ctx, data.get("signed_on"), "signed_on")
    ctx.case.cessation = {"statement": statement, "signed_on": signed_on.isoformat(), "by": ctx.principal.username}
    _doc(ctx, "cessation", statement=statement, signed_on=str(signed_on))
    return "息诉息访：" + statement


@handler("archive")
def archive(ctx: Ctx, data: dict) -> str:
    window = stages.open_stages(ctx.session, ctx.case.id, ["review_request", "recheck_request"])
    if any(s.due_at is None or s.due_at >= ctx.now for s in window):
        raise BadInput("复查（复核）申请期限未届满，暂不能存档", {"archive": ["review window still open"]})
    stages.close_stages(ctx.session, ctx.case.id, None, at=ctx.now, outcome="archived")
    return str(data.get("reason") or "办结存档")


def _window(ctx: Ctx, kind: str, label: str):
    window = stages.open_stages(ctx.session, ctx.case.id, [kind])
    if not window:
        raise BadInput(f"没有可用的{label}期限", {"action": [f"no {kind} window"]})
    if window[0].due_at is not None and ctx.now > window[0].due_at:
        raise BadInput(f"已超过{label}期限（{window[0].basis}）", {"action": [f"{kind} window has passed"]})
    return window[0]


def _served_instant(ctx: Ctx, value) -> datetime:
    return datetime.combine(value, time(12), tzinfo=ZoneInfo(ctx.tz))


@handler("request_review")
def request_review(ctx: Ctx, data: dict) -> str:
    reason = require_text(data, "reason", "复查请求")
    _window(ctx, "review_request", "申请复查")
    stages.close_stages(ctx.session, ctx.case.id, None, at=ctx.now, outcome="review_requested")
    stages.open_stage(ctx.session, ctx.runtime, ctx.snap, ctx.case, "review_decision", started_at=ctx.now)
    ctx.case.review = {**(ctx.case.review or {}), "review": {"requested_at": ctx.now.isoformat(), "reason": reason,
                                                             "previous_status": ctx.previous}}
    ctx.case.resolution = None  # reopened: decided again by the review
    return reason


def _decide(ctx: Ctx, data: dict, key: str, decision_kind: str) -> tuple[str, object]:
    outcome = data.get("outcome")
    if outcome not in REVIEW_OUTCOMES:
        raise BadInput("outcome must be 维持, 变更 or 撤销", {"outcome": list(REVIEW_OUTCOMES)})
    opinion = require_text(data, "opinion", "复查（复核）意见")
    served_on = require_past_date(ctx, data.get("served_on"), "served_on")
    stages.close_stages(ctx.session, ctx.case.id, [decision_kind], at=ctx.now, outcome="decided")
    review = dict(ctx.case.review or {})
    review[key] = {**review.get(key, {}), "outcome": outcome, "opinion": opinion, "served_on": served_on.isoformat(),
                   "decided_by": ctx.principal.username, "decided_at": ctx.now.isoformat()}
    ctx.case.review = review
    return f"{outcome}：{opinion}", served_on


@handler("decide_review")
def decide_review(ctx: Ctx, data: dict) -> str:
    declared, how = _declared_resolution(data)
    reason, served_on = _decide(ctx, data, "review", "review_decision")
    stages.open_stage(ctx.session, ctx.runtime, ctx.snap, ctx.case, "recheck_request",
                      started_at=_served_instant(ctx, served_on))
    if ctx.target == workflow.CLOSED:  # the review closes the case again
        _close_with(ctx, declared, how, blockers=[])
    return reason


@handler("request_recheck")
def request_recheck(ctx: Ctx, data: dict) -> str:
    if not (ctx.case.review or {}).get("review", {}).get("outcome"):
        raise BadInput("复核须在复查之后提出", {"action": ["no review decision yet"]})
    reason = require_text(data, "reason", "复核请求")
    _window(ctx, "recheck_request", "申请复核")
    stages.close_stages(ctx.session, ctx.case.id, None, at=ctx.now, outcome="recheck_requested")
    stages.open_stage(ctx.session, ctx.runtime, ctx.snap, ctx.case, "recheck_decision", started_at=ctx.now)
    ctx.case.review = {**ctx.case.review, "recheck": {"requested_at": ctx.now.isoformat(), "reason": reason}}
    ctx.case.resolution = None
    return reason


@handler("decide_recheck")
def decide_recheck(ctx: Ctx, data: dict) -> str:
    declared, how = _declared_resolution(data)
    reason, _ = _decide(ctx, data, "recheck", "recheck_decision")
    stages.close_stages(ctx.session, ctx.case.id, None, at=ctx.now, outcome="rechecked")
    ctx.case.closed_at = ctx.now
    _close_with(ctx, declared, how, blockers=[])
    return reason + "（复核终结，同一事实和理由不再受理）"


@handler("terminate")
def terminate(ctx: Ctx, data: dict) -> str:
    reason = require_text(data, "reason", "终结理由")
    declared, how = _declared_resolution(data)
    stages.close_stages(ctx.session, ctx.case.id, None, at=ctx.now, outcome="terminated")
    ctx.case.closed_at = ctx.now
    _close_with(ctx, declared, how, blockers=[])
    return reason
