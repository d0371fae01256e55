"""At the unit's receipt: 签收, 异议退回, 重新交办, 包案, 受理, 不予受理 / 不再受理."""
from __future__ import annotations

from assign_svc import documents, notices, service, stages
from assign_svc.domain.workflow import ACCUSATION_PATH, NO_LONGER_REASONS, REJECTION_REASONS, path_of
from assign_svc.handling.core import BadInput, Ctx, handler, require_text
from assign_svc.models import Person, Unit

#: Stages that end once the unit accepts, objects or is replaced.
RECEIPT_KINDS = ("acceptance_notice", "objection")


def _doc(ctx: Ctx, doc_type: str, **fields) -> None:
    unit = ctx.unit
    leader = ctx.person(ctx.case.leader_id)
    base = documents.case_fields(ctx.case, tz=ctx.tz, unit_name=unit.name if unit else "",
                                 leader_name=leader.name if leader else "")
    documents.generate(ctx.session, ctx.case, doc_type, {**base, "today": documents._cn_date(ctx.today), **fields},
                       issuer=unit.name if unit else "", at=ctx.now, tz=ctx.tz, created_by=ctx.principal.username)


@handler("sign")
def sign(ctx: Ctx, data: dict) -> str:
    return str(data.get("reason") or "")


@handler("object")
def object_(ctx: Ctx, data: dict) -> str:
    """异议: within the objection window (5 working days from receipt), with reasons."""
    reason = require_text(data, "reason", "退回理由")
    window = stages.open_stages(ctx.session, ctx.case.id, ["objection"])
    if not window or (window[0].due_at is not None and ctx.now > window[0].due_at):
        raise BadInput("异议期（收到之日起5个工作日）已过，不能退回", {"reason": ["objection window has passed"]})
    stages.close_stages(ctx.session, ctx.case.id, [*RECEIPT_KINDS, "assigned"], at=ctx.now, outcome="objected")
    cycle = _routing_cycle(ctx)
    notices.objection_returned(ctx.session, ctx.runtime, ctx.case, unit_name=ctx.unit.name, reason=reason,
                               cycle=cycle)
    return reason


def _routing_cycle(ctx: Ctx) -> int:
    return int((ctx.case.flags or {}).get("routing_cycle", 1))


@handler("reroute")
def reroute(ctx: Ctx, data: dict) -> str:
    """The petition department overrides the routing (with a reason): a new unit, new receipt stages."""
    reason = require_text(data, "reason", "改派理由")
    unit = ctx.session.get(Unit, data.get("unit_id") or "")
    if unit is None or not unit.active:
        raise BadInput(f"unknown unit {data.get('unit_id')}", {"unit_id": ["unknown or inactive unit"]})
    if not ctx.principal.may_see(unit.region_code) and ctx.principal.role != "admin":
        raise BadInput("the new unit lies outside your jurisdiction", {"unit_id": ["outside your jurisdiction"]})
    if path_of(ctx.case.statutory_type) == ACCUSATION_PATH and unit.kind != "discipline":
        # 检举控告类 goes to discipline inspection only: never to a unit that may be the accused (Art. 32)
        raise BadInput("检举控告类事项只能交纪检监察机关办理", {"unit_id": ["an accusation goes to a discipline unit"]})
    mode = data.get("mode") or ctx.case.mode
    if mode not in ("assign", "forward", "divert"):
        raise BadInput("mode must be assign, forward or divert", {"mode": ["assign | forward | divert"]})
    case = ctx.case
    stages.close_stages(ctx.session, case.id, [*RECEIPT_KINDS, "assigned"], at=ctx.now, outcome="rerouted")
    previous_unit = case.unit_id
    cycle = _routing_cycle(ctx) + 1
    case.unit_id, case.mode, case.in_clock = unit.id, mode, mode != "divert"
    case.route_override_reason, case.assigned_by = reason, ctx.principal.username
    case.flags = {**(case.flags or {}), "routing_cycle": cycle}
    case.assigned_at = ctx.now
    ctx.session.flush()
    service.open_receipt_stages(ctx.session, ctx.runtime, ctx.snap, case, at=ctx.now, assigned_days=data.get("due_days"))
    leader = ctx.snap.people_by_id.get(case.leader_id) if case.leader_id else None
    notices.assignment(ctx.session, ctx.runtime, case, unit_name=unit.name, leader=leader, cycle=cycle)
    if mode == "assign":  # a new 交办单 (转送 and 分流 file none), rendered at its first download
        service.file_assignment_sheet(ctx.session, ctx.runtime, case, unit_name=unit.name,
                                      leader_name=leader.name if leader else "", at=ctx.now,
                                      created_by=ctx.principal.username)
    ctx.event_data.update({"from_unit": previous_unit, "to_unit": unit.id, "mode": mode})
    return reason


@handler("assign_leader")
def assign_leader(ctx: Ctx, data: dict) -> str:
    """领导包案 by hand."""
    person = ctx.session.get(Person, data.get("leader_id") or "")
    if person is None or not person.leader:
        raise BadInput("leader_id must name a leader of the directory", {"leader_id": ["not a leader"]})
    ctx.case.leader_id, ctx.case.leader_basis = person.id, "指定包案"
    notices.assignment(ctx.session, ctx.runtime, ctx.case, unit_name=ctx.unit.name,
                       leader=ctx.snap.people_by_id.get(person.id), cycle=f"leader-{person.id}", to_unit=False)
    ctx.event_data["leader_name"] = person.name
    return str(data.get("reason") or f"指定{person.name}包案")


@handler("accept")
def accept(ctx: Ctx, data: dict) -> str:
    """受理: the 受理告知书 is produced; the handling period starts from acceptance."""
    stages.close_stages(ctx.session, ctx.case.id, RECEIPT_KINDS, at=ctx.now, outcome="accepted")
    if ctx.case.in_clock:
        stage = stages.open_stage(ctx.session, ctx.runtime, ctx.snap, ctx.case, "handling", started_at=ctx.now)
        ctx.session.flush()
        if ctx.case.mode != "assign":
            ctx.case.due_at, ctx.case.deadline_basis = stage.due_at, stage.basis[:128]
    _doc(ctx, "acceptance_notice")
    return str(data.get("reason") or "")


def _refuse(ctx: Ctx, data: dict, *, allowed: tuple[str, ...] | None, decision: str) -> str:
    code = data.get("reason_code")
    if code not in REJECTION_REASONS or (allowed and code not in allowed):
        choices = allowed or tuple(REJECTION_REASONS)
        raise BadInput("reason_code must be one of the statutory reasons",
                       {"reason_code": [f"one of {', '.join(choices)}"]})
    stages.close_stages(ctx.session, ctx.case.id, None, at=ctx.now, outcome="not_accepted")
    _doc(ctx, "rejection_notice", reason_text=REJECTION_REASONS[code], decision=decision,
         explanation=str(data.get("explanation") or ""))
    ctx.case.closed_at = ctx.now
    return f"{REJECTION_REASONS[code]}{('：' + data['explanation']) if data.get('explanation') else ''}"


@handler("reject")
def reject(ctx: Ctx, data: dict) -> str:
    return _refuse(ctx, data, allowed=None, decision="不予受理")


@handler("refuse_repeat")
def refuse_repeat(ctx: Ctx, data: dict) -> str:
    return _refuse(ctx, data, allowed=NO_LONGER_REASONS, decision="不再受理")

