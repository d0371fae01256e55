"""Handling: 延期 (request / approve / refuse), 中止 and 恢复 (待补充材料), 处理意见书, 送达."""
from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from assign_svc import notices, stages
from assign_svc.domain.deadlines import MAX_EXTENSION_DAYS
from assign_svc.domain.workflow import OPINION_OUTCOMES, SERVICE_METHODS
from assign_svc.handling.core import BadInput, Ctx, handler, require_past_date, require_text
from assign_svc.handling.receipt import _doc
from shared.calendar import local_date

HANDLING_KINDS = ("handling", "assigned")


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


@handler("issue_opinion")
def issue_opinion(ctx: Ctx, data: dict) -> str:
    """处理意见书: outcome (支持 / 解释说明 / 不予支持), facts, basis, commitments with due dates."""
    outcome = data.get("outcome")
    if outcome not in OPINION_OUTCOMES:
        raise BadInput("outcome must be 支持, 解释说明 or 不予支持", {"outcome": list(OPINION_OUTCOMES)})
    facts, basis = require_text(data, "facts", "调查核实的事实"), require_text(data, "basis", "处理依据")
    commitments = _commitments(data, ctx)
    stages.close_stages(ctx.session, ctx.case.id, HANDLING_KINDS, at=ctx.now, outcome="opinion_issued")
    ctx.case.opinion = {"outcome": outcome, "facts": facts, "basis": basis, "conclusion": data.get("conclusion", ""),
                        "commitments": commitments, "issued_at": ctx.now.isoformat(),
                        "issued_by": ctx.principal.username}
    _doc(ctx, "opinion", outcome=outcome, facts=facts, basis=basis, conclusion=data.get("conclusion", ""),
         commitments=commitments)
    return f"处理意见：{outcome}"


@handler("serve")
def serve(ctx: Ctx, data: dict) -> str:
    """送达回证: method, date signed — or refusal with a witness.  Serving the opinion opens the
    30-day review window (from the date signed) and the evaluation window."""
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
    doc_title = "信访事项处理意见书" if opinion_phase else "信访事项受理告知书"
    record = {"document": doc_title, "method": method, "signed_on": signed_on.isoformat(), "refused": refused,
              "witness": data.get("witness") or "", "served_by": ctx.principal.username}
    services = dict(ctx.case.service or {})
    services["opinion" if opinion_phase else "acceptance"] = record
    ctx.case.service = services
    _doc(ctx, "service_receipt", document_title=doc_title, method=method, refused=refused,
         witness=data.get("witness") or "", signed_on=str(signed_on), actor_name=ctx.principal.username)
    if opinion_phase:
        served_at = datetime.combine(signed_on, time(12), tzinfo=ZoneInfo(ctx.tz))
        stages.open_stage(ctx.session, ctx.runtime, ctx.snap, ctx.case, "review_request", started_at=served_at)
        stages.open_stage(ctx.session, ctx.runtime, ctx.snap, ctx.case, "evaluation", started_at=served_at)
    return f"{doc_title}{'留置' if refused else ''}送达（{method}）"
