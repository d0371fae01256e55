"""case.status_changed applied in the case's order (changed_at, seq), whatever the delivery order.

assign makes several status changes of one case at one instant (受理 + 送达受理告知书; the 逐级审签
sign-off that closes the case); Dramatiq delivers them on several threads with retries, in any order.
Intake must end where in-order delivery ends: status, position, flags and history (变更记录).
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from intake_svc import service
from intake_svc.models import Petition, PetitionChange
from shared.contracts import CaseStatusChanged
from tests.intake.conftest import full_body

T0 = datetime(2026, 11, 23, 2, tzinfo=timezone.utc)
#: (seq, hours after T0, previous, status, resolved, final): a case's status changes as assign makes them
#: (see assign_svc/timeline.py): two at 04:00 (受理 + 送达受理告知书), three at one instant at the end
#: (the last sign-off closes the case, then it is archived at once).
TIMELINE = [
    (1, 0, "", "待签收", False, False),
    (2, 1, "待签收", "已签收待办理", False, False),
    (3, 2, "已签收待办理", "已受理待送达", False, False),
    (4, 2, "已受理待送达", "办理中", False, False),
    (5, 26, "办理中", "已处理待送达", False, False),
    (6, 27, "已处理待送达", "已送达待评价", False, False),
    (7, 51, "已送达待评价", "已办结", True, False),
    (8, 51, "已办结", "已存档", True, False),
    (9, 51, "已存档", "终结", True, True),
]


def events(petition: dict, timeline=TIMELINE, *, with_seq: bool = True) -> list[CaseStatusChanged]:
    return [CaseStatusChanged(case_id="c-" + petition["id"], petition_id=petition["id"],
                              display_no=petition["display_no"], unit_id="411302-zjj", region_code="411302",
                              status=status, previous_status=previous, changed_at=T0 + timedelta(hours=hours),
                              actor=f"handler-{seq}", reason=f"action {seq}", resolved=resolved, final=final,
                              seq=seq if with_seq else None)
            for seq, hours, previous, status, resolved, final in timeline]


def deliver(intake, batch: list[CaseStatusChanged]) -> None:
    for event in batch:  # one transaction per message, as the actor applies them
        with intake.runtime.uow() as session:
            service.apply_case_status(session, event)


def state(intake, petition_id: str) -> dict:
    with intake.runtime.sessions() as s:
        p = s.get(Petition, petition_id)
        history = sorted((c.actor, c.changes["from"], c.changes["to"], c.changes["reason"]) for c in s.scalars(
            select(PetitionChange).where(PetitionChange.petition_id == petition_id,
                                         PetitionChange.action == "case_status")))
        return {"case_status": p.case_status, "case_updated_at": p.case_updated_at, "case_seq": p.case_seq,
                "case_resolved": p.case_resolved, "case_final": p.case_final, "history": history}


def orders(batch: list, rng: random.Random) -> dict[str, list]:
    """In order, reversed, the same-instant groups reversed and shuffled (groups in time order), and
    shuffled as a whole."""
    groups: dict[datetime, list] = {}
    for e in batch:
        groups.setdefault(e.changed_at, []).append(e)
    out = {"in order": list(batch), "reversed": list(reversed(batch)),
           "groups reversed": [e for g in groups.values() for e in reversed(g)]}
    for i in range(3):
        out[f"groups shuffled {i}"] = [e for g in groups.values() for e in rng.sample(g, len(g))]
        out[f"shuffled {i}"] = rng.sample(batch, len(batch))
    return out


def test_same_instant_changes_end_as_in_order_delivery(intake):
    results = {}
    for name in orders(events({"id": "-", "display_no": "-"}), random.Random(20261122)):
        petition = intake.post(full_body()).json
        order = orders(events(petition), random.Random(20261122))[name]  # the same permutation for each
        deliver(intake, order)
        results[name] = state(intake, petition["id"])
    expected = results["in order"]
    for name, got in results.items():
        assert got == expected, name
    assert (expected["case_status"], expected["case_seq"], expected["case_resolved"], expected["case_final"]) == \
        ("终结", 9, True, True)
    assert expected["case_updated_at"] == T0 + timedelta(hours=51)
    assert len(expected["history"]) == len(TIMELINE)


@pytest.mark.parametrize("late", [3, 7])
def test_an_earlier_action_of_the_same_instant_arriving_last_does_not_win(intake, late):
    # 受理 (seq 3) arrives after 送达受理告知书 (seq 4); the first sign-off's 已办结 (seq 7) after 终结 (seq 9)
    petition = intake.post(full_body()).json
    batch = [e for e in events(petition) if e.seq <= late + 1 or late == 7]
    held = next(e for e in batch if e.seq == late)
    deliver(intake, [e for e in batch if e is not held] + [held])
    got = state(intake, petition["id"])
    last = batch[-1]
    assert (got["case_status"], got["case_seq"]) == (last.status, last.seq)
    assert ("handler-%d" % late, held.previous_status, held.status, held.reason) in got["history"]
    r = intake.get(f"/{petition['id']}")
    assert r.json["case_status"] == last.status


def test_changes_without_seq_keep_the_arrival_order_at_one_instant(intake):
    # producers from before seq: at one instant the change arriving last wins, an older one is ignored
    petition = intake.post(full_body()).json
    batch = events(petition, with_seq=False)
    deliver(intake, [batch[0], batch[1], batch[3], batch[2]])
    got = state(intake, petition["id"])
    assert (got["case_status"], got["case_seq"]) == ("已受理待送达", None)
    deliver(intake, [batch[4], batch[1]])  # older: ignored, not in the history
    got = state(intake, petition["id"])
    assert got["case_status"] == "已处理待送达" and len(got["history"]) == 5
    # a change with a seq after one without, at the same instant, is applied (nothing to compare with)
    with_seq = events(petition)[4]
    deliver(intake, [with_seq])
    assert state(intake, petition["id"])["case_seq"] == 5
