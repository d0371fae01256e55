"""Handling: 延期 (request / approve / refuse), 中止 and 恢复 (待补充材料), the written result by
statutory type (处理意见书 / 答复意见 / 核查结论, see ``workflow``), 送达."""
from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from assign_svc import notices, stages
from assign_svc.domain.deadlines import MAX_EXTENSION_DAYS
from assign_svc.domain import workflow
from assign_svc.domain.workflow import ADOPTION_VALUES, OPINION_OUTCOMES, SERVICE_METHODS, TRUTH_VALUES
from assign_svc.handling.core import BadInput, Ctx, handler, require_past_date, require_text
from assign_svc.handling.receipt import _doc
from shared.calendar import local_date

HANDLING_KINDS = ("handling", "assigned")
#: The document served at the end of handling, by path.
RESULT_TITLES = {workflow.FULL: "信访事项处理意见书", workflow.SUGGESTION_PATH: "建议意见类事项答复意见书",
                 workflow.ACCUSATION_PATH: "检举控告办理结果反馈"}


def _headline(ctx: Ctx, open_stages: list) -> None:
    """The case's headline deadline follows its 交办 stage when assigned, else its handling stage."""
    wanted = "assigned" if ctx.case.mode == "assign" else "handling"
    for stage in open_stages:
        if stage.kind == wanted and stage.due_at is not None:
            ctx.case.due_at, ctx.case.deadline_basis = stage.due_at, stage.basis[:128]


@handler("request_extension")
def request_extension(ctx: Ctx, data: dict) -> str:
    """延期申请: once per case, at most 30 days, with reasons; the head must approve."""
    reason = require_text(data, "reason", "延期理由")
    days = data.get("days")
    if (ctx.case.extension or {}).get("approved_days"):
        raise BadInput("办理期限只能延期一次，本件已延期", {"days": ["already extended once"]})
    if not isinstance(days, int) or not 1 <= days <= MAX_EXTENSION_DAYS:
        raise BadInput(f"延期不得超过{MAX_EXTENSION_DAYS}日", {"days": [f"1 to {MAX_EXTENSION_DAYS} days"]})
    handling = stages.open_stages(ctx.session, ctx.case.id, ["handling"])
    if handling and handling[0].due_at is not None and ctx.now > handling[0].due_at:
        raise BadInput("办理期限已届满，不能再申请延期", {"days": ["the handling period has already expired"]})
    ctx.case.extension = {"requested_days": days, "reason": reason, "requested_at": ctx.now.isoformat(),
                          "requested_by": ctx.principal.username}
    due = handling[0].due_at if handling else ctx.case.due_at
    notices.extension_pending(ctx.session, ctx.runtime, ctx.case, unit_name=ctx.unit.name, days=days, reason=reason,
                              due_at=due)
    return reason


@handler("approve_extension")
def approve_extension(ctx: Ctx, data: dict) -> str:
    ext = dict(ctx.case.extension or {})
    days = int(ext.get("requested_days") or 0)
    extended = stages.open_stages(ctx.session, ctx.case.id, HANDLING_KINDS)
    for stage in extended:
        stages.extend(ctx.runtime, stage, days)
    _headline(ctx, extended)
    ext.update({"approved_days": days, "approved_at": ctx.now.isoformat(), "approved_by": ctx.principal.username})
    ctx.case.extension = ext
    _doc(ctx, "extension_notice", reason=ext.get("reason", ""), days=days)
    ctx.event_data["due_at"] = ctx.case.due_at
    return str(data.get("reason") or f"批准延期{days}日")


@handler("refuse_extension")
def refuse_extension(ctx: Ctx, data: dict) -> str:
    reason = require_text(data, "reason", "不批准理由")
    ext = dict(ctx.case.extension or {})
    ext.update({"refused_at": ctx.now.isoformat(), "refused_by": ctx.principal.username, "refusal": reason})
    ext.pop("requested_days", None)
    ctx.case.extension = ext
    return reason


@handler("pause")
def pause(ctx: Ctx, data: dict) -> str:
    """待补充材料: the clock of the handling stages stops."""
    reason = require_text(data, "reason", "中止理由（需补充的材料）")
    ctx.case.previous_status = ctx.previous
    stages.pause(ctx.runtime, stages.open_stages(ctx.session, ctx.case.id, HANDLING_KINDS), at=ctx.now)
    return reason


@handler("resume")
def resume(ctx: Ctx, data: dict) -> str:
    """恢复办理: the clock restarts; due dates move by the days paused."""
    open_ = stages.open_stages(ctx.session, ctx.case.id, HANDLING_KINDS)
    stages.resume(ctx.runtime, open_, at=ctx.now)
    ctx.target = ctx.case.previous_status or ctx.target
    ctx.case.previous_status = None
    _headline(ctx, open_)
    ctx.event_data["due_at"] = ctx.case.due_at
    return str(data.get("reason") or "补充材料已收到")


def _commitments(data: dict, ctx: Ctx) -> list[dict]:
    out = []
    for i, c in enumerate(data.get("commitments") or []):
        content, due = str(c.get("content") or "").strip(), c.get("due_date")
        if not content or not isinstance(due, date):
            raise BadInput("each commitment needs content and due_date", {f"commitments.{i}": ["content and due_date"]})
        if due < ctx.today:
            raise BadInput("a commitment's due date lies in the past", {f"commitments.{i}.due_date": ["in the past"]})
        out.append({"content": content, "due_date": due.isoformat(), "done": False})
    return out


def _truth(data: dict) -> str:
    truth = data.get("truth")
    if truth not in TRUTH_VALUES:
        raise BadInput("truth must be 属实, 部分属实 or 不属实", {"truth": list(TRUTH_VALUES)})
    return truth


def _issue(ctx: Ctx, data: dict, *, doc_type: str, record: dict) -> dict:
    """The written result of the handling (处理意见书 / 答复意见 / 核查结论): facts, basis, commitments;
    the handling stages close and the document is filed."""
    facts, basis = require_text(data, "facts", "调查核实的事实"), require_text(data, "basis", "处理依据")
    commitments = _commitments(data, ctx)
    stages.close_stages(ctx.session, ctx.case.id, HANDLING_KINDS, at=ctx.now, outcome="opinion_issued")
    conclusion = str(data.get("conclusion") or "")
    ctx.case.opinion = {**record, "facts": facts, "basis": basis, "conclusion": conclusion,
                        "commitments": commitments, "issued_at": ctx.now.isoformat(),
                        "issued_by": ctx.principal.username, "kind": doc_type}
    _doc(ctx, doc_type, facts=facts, basis=basis, conclusion=conclusion, commitments=commitments, **record)
    ctx.event_data.update(record)
    return ctx.case.opinion


@handler("issue_opinion")
def issue_opinion(ctx: Ctx, data: dict) -> str:
    """处理意见书 (申诉求决类): outcome (支持 / 解释说明 / 不予支持), whether the claimed facts were found
    true (属实 / 部分属实 / 不属实), facts, basis, commitments with due dates."""
    outcome = data.get("outcome")
    if outcome not in OPINION_OUTCOMES:
        raise BadInput("outcome must be 支持, 解释说明 or 不予支持", {"outcome": list(OPINION_OUTCOMES)})
    truth = _truth(data)
    _issue(ctx, data, doc_type="opinion", record={"outcome": outcome, "truth": truth})
    return f"处理意见：{outcome}（反映问题{truth}）"


@handler("reply")
def reply(ctx: Ctx, data: dict) -> str:
    """答复意见 (建议意见类, Art. 31): the suggestion studied and 采纳 / 部分采纳 / 未采纳, with reasons.
    No 属实性 is judged on a suggestion."""
    adoption = data.get("adoption")
    if adoption not in ADOPTION_VALUES:
        raise BadInput("adoption must be 采纳, 部分采纳 or 未采纳", {"adoption": list(ADOPTION_VALUES)})
    if data.get("truth") is not None:
        raise BadInput("建议意见类事项不作属实性认定", {"truth": ["not for 建议意见类"]})
    _issue(ctx, data, doc_type="reply", record={"adoption": adoption})
    return f"答复意见：{adoption}"


@handler("issue_finding")
def issue_finding(ctx: Ctx, data: dict) -> str:
    """核查结论 (检举控告类, Art. 32): 属实 / 部分属实 / 不属实, the facts found and the basis; fed back
    to the accuser (送达) without any 处理意见书 outcome."""
    if data.get("outcome") is not None:
        raise BadInput("检举控告类事项不出具处理意见书（支持 / 解释说明 / 不予支持）", {"outcome": ["not for 检举控告类"]})
    truth = _truth(data)
    _issue(ctx, data, doc_type="finding", record={"truth": truth})
    return f"核查结论：{truth}"


@handler("serve")
def serve(ctx: Ctx, data: dict) -> str:
    """送达回证: method, date signed — or refusal with a witness.  Serving the opinion opens the
    30-day review window (from the date signed; full path only) and the evaluation window (not for
    accusations)."""
    method = data.get("method")
    if method not in SERVICE_METHODS:
        raise BadInput("unknown service method", {"method": list(SERVICE_METHODS)})
    refused = bool(data.get("refused"))
    if refused and not str(data.get("witness") or "").strip():
        raise BadInput("拒绝签收的须有见证人", {"witness": ["required when the petitioner refuses to sign"]})
    opinion_phase = ctx.previous != "已受理待送达"
    issued = ctx.case.opinion.get("issued_at") if opinion_phase and ctx.case.opinion else None
    not_before = local_date(datetime.fromisoformat(issued), ctx.tz) if issued else None
    signed_on = require_past_date(ctx, data.get("signed_on"), "signed_on", not_before=not_before)
    path = workflow.path_of(ctx.case.statutory_type)
    doc_title = RESULT_TITLES[path] if opinion_phase else "信访事项受理告知书"
    record = {"document": doc_title, "method": method, "signed_on": signed_on.isoformat(), "refused": refused,
              "witness": data.get("witness") or "", "served_by": ctx.principal.username}
    services = dict(ctx.case.service or {})
    services["opinion" if opinion_phase else "acceptance"] = record
    ctx.case.service = services
    _doc(ctx, "service_receipt", document_title=doc_title, method=method, refused=refused,
         witness=data.get("witness") or "", signed_on=str(signed_on), actor_name=ctx.principal.username)
    if opinion_phase:  # 复查 only on the full path; no 满意度评价 of an accusation's finding
        served_at = datetime.combine(signed_on, time(12), tzinfo=ZoneInfo(ctx.tz))
        if path == workflow.FULL:
            stages.open_stage(ctx.session, ctx.runtime, ctx.snap, ctx.case, "review_request", started_at=served_at)
        if path != workflow.ACCUSATION_PATH:
            stages.open_stage(ctx.session, ctx.runtime, ctx.snap, ctx.case, "evaluation", started_at=served_at)
    return f"{doc_title}{'留置' if refused else ''}送达（{method}）"
