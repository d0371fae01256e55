"""The 督查件 lifecycle: open → rectifying → rectified → verified → closed, or reopened.

Each action names the states it may start from and the state it leads to.
"""
from __future__ import annotations

#: action -> (allowed from, to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start_rectifying": (frozenset({"open", "reopened"}), "rectifying"),
    "submit_rectification": (frozenset({"open", "rectifying", "reopened"}), "rectified"),
    "verify": (frozenset({"rectified"}), "verified"),
    "close": (frozenset({"verified"}), "closed"),
    "reopen": (frozenset({"rectified", "verified", "closed"}), "reopened"),
}

#: Actions on the ladder (督办阶梯) and the states they are allowed in.
LADDER_ACTIONS: dict[str, frozenset[str]] = {
    "climb": frozenset({"open", "rectifying", "reopened", "rectified"}),
    "hold": frozenset({"open", "rectifying", "reopened", "rectified"}),
    "release": frozenset({"open", "rectifying", "reopened", "rectified"}),
}

#: States in which a finding is still unrectified (the ladder keeps climbing).
UNRECTIFIED = frozenset({"open", "rectifying", "reopened"})

ACTION_LABELS = {
    "open": "立件", "start_rectifying": "开始整改", "submit_rectification": "提交整改", "verify": "核验",
    "close": "销号", "reopen": "重新打开", "climb": "升级督办", "hold": "暂停升级", "release": "恢复升级",
}


class IllegalTransition(Exception):
    def __init__(self, action: str, status: str, allowed: list[str]) -> None:
        super().__init__(f"“{ACTION_LABELS.get(action, action)}”不能用于状态为 {status} 的督查件")
        self.action, self.status, self.allowed = action, status, allowed


def allowed_actions(status: str) -> list[str]:
    out = [a for a, (sources, _) in TRANSITIONS.items() if status in sources]
    out += [a for a, sources in LADDER_ACTIONS.items() if status in sources]
    return out


def next_status(action: str, status: str) -> str:
    """The state ``action`` leads to from ``status``; IllegalTransition when not allowed."""
    if action in TRANSITIONS:
        sources, target = TRANSITIONS[action]
        if status in sources:
            return target
    elif action in LADDER_ACTIONS and status in LADDER_ACTIONS[action]:
        return status
    raise IllegalTransition(action, status, allowed_actions(status))
