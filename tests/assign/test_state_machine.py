"""The handling state machine (pure): every move stays within the contract's states."""
from __future__ import annotations

import pytest

from assign_svc.domain import workflow
from shared.contracts import CASE_STATES


def test_every_state_an_action_reaches_is_a_contract_state():
    for action in workflow.ACTIONS.values():
        for source, target in action.moves.items():
            assert source in CASE_STATES, (action.name, source)
            assert target in CASE_STATES or target == workflow.PREVIOUS, (action.name, target)


@pytest.mark.parametrize("state,action,expected", [
    ("待签收", "sign", "已签收待办理"), ("已签收待办理", "accept", "已受理待送达"), ("已受理待送达", "serve", "办理中"),
    ("办理中", "request_extension", "延期申请"), ("延期申请", "approve_extension", "已延期"),
    ("已延期", "pause", "待补充材料"), ("办理中", "issue_opinion", "已处理待送达"), ("已处理待送达", "serve", "已送达待评价"),
    ("已办结", "request_review", "复查中"), ("复查中", "decide_review", "已办结"), ("已办结", "request_recheck", "复核中"),
    ("复核中", "decide_recheck", "复核已完成"), ("退回", "reroute", "待签收"), ("办理中", "terminate", "终结"),
])
def test_transitions(state, action, expected):
    assert workflow.transition(state, action) == expected


def test_resume_returns_to_the_state_before_the_pause():
    assert workflow.transition("待补充材料", "resume", previous="已延期") == "已延期"
    assert workflow.transition("待补充材料", "resume") == "办理中"


@pytest.mark.parametrize("state", ["复核已完成", "终结", "不再受理"])
def test_final_states_allow_nothing(state):
    assert workflow.allowed_actions(state) == []
    with pytest.raises(workflow.IllegalTransition) as err:
        workflow.transition(state, "terminate")
    assert err.value.allowed == [] and "现在可以：无" in str(err.value)


def test_review_and_re_review_only_for_appeals_and_requests():
    # Given a closed case of each statutory type
    # Then only 申诉求决类 (or an unknown type) may go to 复查/复核
    for statutory_type in ("申诉求决类", None):
        assert workflow.transition("已办结", "request_review", statutory_type=statutory_type) == "复查中"
        assert "request_recheck" in workflow.allowed_actions("已办结", statutory_type)
    for statutory_type in ("建议意见类", "检举控告类"):
        assert "request_review" not in workflow.allowed_actions("已办结", statutory_type)
        with pytest.raises(workflow.IllegalTransition) as exc:
            workflow.transition("已办结", "request_review", statutory_type=statutory_type)
        assert "request_review" not in exc.value.allowed and "archive" in exc.value.allowed
