"""The handling workflow (办理流程) as a state machine.  Pure Python.

States are the ones real systems show (domain.md §3).  Each action is allowed from some
states and leads to one; ``transition`` refuses any other with ``IllegalTransition``,
which names the actions allowed now.  Who may act (the handling unit, its head, the
petition department, the next-higher unit) is part of each action's definition.
"""
from __future__ import annotations

from dataclasses import dataclass

PENDING_SIGNATURE = "待签收"
SIGNED = "已签收待办理"
ACCEPTED = "已受理待送达"
HANDLING = "办理中"
OPINION_ISSUED = "已处理待送达"
SERVED = "已送达待评价"
CLOSED = "已办结"
ARCHIVED = "已存档"
RETURNED = "退回"
NOT_ACCEPTED = "不予受理"
NO_LONGER_ACCEPTED = "不再受理"
EXTENSION_REQUESTED = "延期申请"
EXTENDED = "已延期"
PAUSED = "待补充材料"
REVIEWING = "复查中"
RECHECKING = "复核中"
RECHECKED = "复核已完成"
TERMINATED = "终结"

#: States from which the matter can no longer move on (except 终结 where allowed).
FINAL = frozenset({RECHECKED, TERMINATED, NO_LONGER_ACCEPTED})

#: Who acts: the handling unit's staff, its head (负责人), the owning leader (包案领导), the petition
#: department, the next-higher unit.
UNIT, HEAD, OWNER, PETITION_DEPT, HIGHER = "unit", "head", "owning_leader", "petition_dept", "higher"
#: Marker: the action returns to the state held before (resume after a pause).
PREVIOUS = "<previous>"


@dataclass(frozen=True)
class Action:
    name: str
    label: str  # Chinese, shown in the timeline
    actors: tuple[str, ...]
    moves: dict[str, str]


def _a(name: str, label: str, actor: str | tuple[str, ...], moves: dict[str, str]) -> Action:
    return Action(name, label, actor if isinstance(actor, tuple) else (actor,), moves)


_HANDLING = (HANDLING, EXTENDED)
_OPEN_BEFORE_CLOSURE = (PENDING_SIGNATURE, SIGNED, ACCEPTED, HANDLING, EXTENSION_REQUESTED, EXTENDED, PAUSED,
                        OPINION_ISSUED, SERVED, RETURNED, CLOSED, ARCHIVED, REVIEWING, RECHECKING, NOT_ACCEPTED)

ACTIONS: dict[str, Action] = {a.name: a for a in (
    _a("sign", "签收", UNIT, {PENDING_SIGNATURE: SIGNED}),
    _a("object", "提出异议并退回", UNIT, {PENDING_SIGNATURE: RETURNED, SIGNED: RETURNED}),
    _a("reroute", "重新交办", PETITION_DEPT, {PENDING_SIGNATURE: PENDING_SIGNATURE, SIGNED: PENDING_SIGNATURE,
                                          RETURNED: PENDING_SIGNATURE}),
    _a("assign_leader", "指定包案领导", PETITION_DEPT, {s: s for s in _OPEN_BEFORE_CLOSURE if s not in (ARCHIVED,)}),
    _a("accept", "受理", UNIT, {SIGNED: ACCEPTED}),
    _a("reject", "不予受理", UNIT, {SIGNED: NOT_ACCEPTED}),
    _a("refuse_repeat", "不再受理", UNIT, {PENDING_SIGNATURE: NO_LONGER_ACCEPTED, SIGNED: NO_LONGER_ACCEPTED}),
    _a("request_extension", "申请延期", UNIT, {HANDLING: EXTENSION_REQUESTED}),
    _a("approve_extension", "批准延期", HEAD, {EXTENSION_REQUESTED: EXTENDED}),
    _a("refuse_extension", "不批准延期", HEAD, {EXTENSION_REQUESTED: HANDLING}),
    _a("pause", "中止办理（待补充材料）", UNIT, {HANDLING: PAUSED, EXTENDED: PAUSED}),
    _a("resume", "恢复办理", UNIT, {PAUSED: PREVIOUS}),
    _a("issue_opinion", "出具处理意见书", UNIT, {HANDLING: OPINION_ISSUED, EXTENDED: OPINION_ISSUED}),
    _a("reply", "出具答复意见", UNIT, {HANDLING: OPINION_ISSUED}),
    _a("issue_finding", "作出核查结论", UNIT, {HANDLING: OPINION_ISSUED}),
    _a("serve", "送达", UNIT, {ACCEPTED: HANDLING, OPINION_ISSUED: SERVED}),
    _a("evaluate", "满意度评价", (UNIT, PETITION_DEPT), {SERVED: SERVED, CLOSED: CLOSED}),
    _a("submit_closure", "报送结案报告", UNIT, {SERVED: SERVED}),
    _a("sign_off", "逐级审签", (HEAD, OWNER, PETITION_DEPT), {SERVED: SERVED}),
    _a("fulfil_commitment", "承诺事项落实", UNIT, {SERVED: SERVED, CLOSED: CLOSED, ARCHIVED: ARCHIVED}),
    _a("record_cessation", "息诉息访", (UNIT, PETITION_DEPT), {SERVED: SERVED, CLOSED: CLOSED, ARCHIVED: ARCHIVED}),
    _a("archive", "存档", PETITION_DEPT, {CLOSED: ARCHIVED}),
    _a("request_review", "申请复查", (PETITION_DEPT, HIGHER), {SERVED: REVIEWING, CLOSED: REVIEWING, ARCHIVED: REVIEWING}),
    _a("decide_review", "复查决定", HIGHER, {REVIEWING: CLOSED}),
    _a("request_recheck", "申请复核", (PETITION_DEPT, HIGHER), {CLOSED: RECHECKING, ARCHIVED: RECHECKING}),
    _a("decide_recheck", "复核决定", HIGHER, {RECHECKING: RECHECKED}),
    _a("terminate", "终结", (PETITION_DEPT, HIGHER), {s: TERMINATED for s in _OPEN_BEFORE_CLOSURE}),
)}

#: 不予受理 / 不再受理 reasons (《信访工作条例》第二十二条、第二十五条、第三十六条).
REJECTION_REASONS: dict[str, str] = {
    "legal_channel": "已经或者依法应当通过诉讼、仲裁、行政复议等法定途径解决的",
    "already_handling": "已经受理或者正在办理的",
    "not_administrative": "不属于本机关、单位职权范围的",
    "no_request": "没有明确的信访请求和事实理由的",
    "beyond_review": "对已经复核的信访事项，以同一事实和理由再次提出的",
}
NO_LONGER_REASONS = ("beyond_review", "already_handling")

#: Outcomes of a 处理意见书 (Art. 33) and satisfaction grades.
OPINION_OUTCOMES = ("支持", "解释说明", "不予支持")
#: 属实性认定 of the facts the petitioner (accuser) claimed: 申诉求决类 and 检举控告类 (属实率).
TRUTH_VALUES = ("属实", "部分属实", "不属实")
#: 答复意见 of a 建议意见类 matter (Art. 31: 采纳或者部分采纳，并予以回复).
ADOPTION_VALUES = ("采纳", "部分采纳", "未采纳")
GRADES = ("满意", "基本满意", "不满意")
EVALUATION_TARGETS = ("petition_dept", "handling_unit")
SERVICE_METHODS = ("直接送达", "邮寄送达", "留置送达", "电子送达", "委托送达")


class IllegalTransition(Exception):
    def __init__(self, action: str, state: str, allowed: list[str]) -> None:
        self.action, self.state, self.allowed = action, state, allowed
        label = ACTIONS[action].label if action in ACTIONS else action
        super().__init__(f"当前状态“{state}”下不能执行“{label}”；现在可以：{'、'.join(allowed) or '无'}")


#: The three statutory types (domain.md §1) and the paths they get (《信访工作条例》第三十一至三十六条):
#:
#: - 申诉求决类 — the full procedure: 处理意见书 (支持 / 解释说明 / 不予支持, with 属实性), the
#:   60-day clock, one extension, 满意度评价, 复查 and 复核 (Arts. 33–36).
#: - 建议意见类 — the unit studies the suggestion and replies (Art. 31: 采纳或者部分采纳，并予以回复):
#:   a 答复意见 (采纳 / 部分采纳 / 未采纳) instead of the 处理意见书; no extension, no 复查/复核;
#:   the handling clock is the policy ``handling-suggestion`` (60 days by default, a local setting:
#:   the regulation sets no period for suggestions).  The petitioner evaluates the reply.
#: - 检举控告类 — handled by discipline inspection under its own rules (Art. 32: 依规依纪依法接收、
#:   受理、办理和反馈); the result is a 核查结论 (属实 / 部分属实 / 不属实); no extension, no 复查/复核
#:   (those are remedies against a 处理意见书, which an accusation does not get), and no
#:   satisfaction evaluation: the accuser is told the result (反馈) but does not grade a disciplinary
#:   finding — 满意度评价 is a remedy of the 申诉求决 / 建议意见 paths.  The accuser's identity never
#:   reaches the unit (Art. 32: 不得将检举、揭发材料以及有关情况透露或者转给被检举、揭发的人员或者单位).
#:
#: Any other value (``None``: a petition from before intake sent the type, or an unknown type) keeps
#: the full procedure rather than silently losing a right of review.
APPEAL, SUGGESTION, ACCUSATION = "申诉求决类", "建议意见类", "检举控告类"
FULL, SUGGESTION_PATH, ACCUSATION_PATH = "full", "suggestion", "accusation"
REVIEW_ACTIONS = frozenset({"request_review", "decide_review", "request_recheck", "decide_recheck"})
#: Actions that belong to some paths only; every other action is open to all three.
ACTION_PATHS: dict[str, frozenset[str]] = {
    **{a: frozenset({FULL}) for a in REVIEW_ACTIONS},
    **{a: frozenset({FULL}) for a in ("issue_opinion", "request_extension", "approve_extension",
                                      "refuse_extension")},
    "reply": frozenset({SUGGESTION_PATH}),
    "issue_finding": frozenset({ACCUSATION_PATH}),
    "evaluate": frozenset({FULL, SUGGESTION_PATH}),
}


def path_of(statutory_type: str | None) -> str:
    """The procedure a statutory type gets: ``full``, ``suggestion`` or ``accusation``."""
    return {SUGGESTION: SUGGESTION_PATH, ACCUSATION: ACCUSATION_PATH}.get(statutory_type or "", FULL)


def _applies(action: str, statutory_type: str | None) -> bool:
    paths = ACTION_PATHS.get(action)
    return paths is None or path_of(statutory_type) in paths


def allowed_actions(state: str, statutory_type: str | None = None) -> list[str]:
    return [name for name, action in ACTIONS.items() if state in action.moves and _applies(name, statutory_type)]


def transition(state: str, action: str, *, previous: str | None = None, statutory_type: str | None = None) -> str:
    """The state after ``action`` from ``state``; IllegalTransition if not allowed."""
    spec = ACTIONS.get(action)
    if spec is None or state not in spec.moves or not _applies(action, statutory_type):
        raise IllegalTransition(action, state, allowed_actions(state, statutory_type))
    target = spec.moves[state]
    if target == PREVIOUS:
        return previous or HANDLING
    return target
