"""Deadline policies as data on the working-day calendar: statutory defaults, local overrides,
holidays, make-up working days, year boundaries, an unknown year, versions, recomputation."""
from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.calendar import WorkCalendar, local_date
from tests.assign.conftest import beijing, freeze

TZ = "Asia/Shanghai"


def _stage(case: dict, kind: str) -> dict:
    return next(s for s in case["stages"] if s["kind"] == kind and s["closed_at"] is None)


def _day(iso: str) -> date:
    return local_date(datetime.fromisoformat(iso), TZ)


def _accepted(assign, at: datetime, **petition) -> dict:
    freeze(at)
    case_id = assign.register(**petition)
    who = assign.unit("411302-zjj")
    assert assign.act(case_id, "sign", **who).status_code == 200
    r = assign.act(case_id, "accept", **who)
    assert r.status_code == 200, r.json
    return r.json


@pytest.mark.parametrize("accepted_on,due_on,why", [
    (beijing(2025, 8, 3), date(2025, 10, 9), "day 60 = 10-02, inside National Day (rest to 10-08): rolls to 10-09"),
    (beijing(2025, 8, 12), date(2025, 10, 11), "day 60 = Sat 10-11, a make-up working day (调休): no roll"),
    (beijing(2025, 6, 30), date(2025, 8, 29), "day 60 = Fri 08-29, a plain working day"),
    (beijing(2025, 11, 5), date(2026, 1, 4), "across the year: day 60 = Sun 2026-01-04, a make-up working day"),
    (beijing(2025, 11, 1), date(2025, 12, 31), "day 60 = Wed 12-31, the last day of the year"),
])
def test_handling_period_is_60_calendar_days_from_acceptance(assign, accepted_on, due_on, why):
    case = _accepted(assign, accepted_on)
    handling = _stage(case, "handling")
    assert _day(handling["due_at"]) == due_on, why
    assert handling["basis"].startswith("《信访工作条例》第三十四条") and handling["policy_code"] == "handling"
    # The period ends at the end of the local day
    assert datetime.fromisoformat(handling["due_at"]).astimezone(ZoneInfo(TZ)).strftime("%H:%M:%S") == "23:59:59"


def test_local_rule_5_working_days_for_the_acceptance_notice_in_wancheng(assign):
    # Given Monday 2025-09-22 and 宛城区's local 5-working-day rule; Sunday 09-28 is a make-up working day
    freeze(beijing(2025, 9, 22))
    wancheng = assign.case(assign.register())
    wolong = assign.case(assign.register(region_code="411303"))
    # Then 宛城区 counts Tue, Wed, Thu, Fri and the make-up Sunday
    notice = _stage(wancheng, "acceptance_notice")
    assert _day(notice["due_at"]) == date(2025, 9, 28) and notice["policy_code"] == "wancheng-acceptance-5wd"
    assert notice["basis"].startswith("宛城区规定")
    # And 卧龙区 keeps the statutory 15 days: 10-07 is a holiday, so 10-09 (the holiday runs to 10-08)
    statutory = _stage(wolong, "acceptance_notice")
    assert _day(statutory["due_at"]) == date(2025, 10, 9) and statutory["policy_code"] == "acceptance-notice"
    # And the objection window is 5 working days everywhere
    assert _day(_stage(wolong, "objection")["due_at"]) == date(2025, 9, 28)


def test_nanyang_poverty_petitions_get_7_days(assign):
    freeze(beijing(2025, 9, 22))
    case = assign.case(assign.register(request_text="扶贫产业补贴至今未发放", category="农村农业"))
    assigned = _stage(case, "assigned")
    assert _day(assigned["due_at"]) == date(2025, 9, 29) and assigned["policy_code"] == "nanyang-poverty-7d"
    assert case["due_at"] == assigned["due_at"] and case["deadline_basis"].startswith("南阳市规定")
    # warned 2 days before, at the same instant of the day
    assert _day(assigned["warn_at"]) == date(2025, 9, 27)


def test_a_year_the_calendar_does_not_know_is_provisional(assign):
    # Given a petition registered 2026-12-01: the 60-day deadline falls in 2027 (unknown to chinesecalendar 1.11)
    case = assign.case(assign.register(registered_at=beijing(2026, 12, 1)))
    assigned = _stage(case, "assigned")
    # Then day 60 (Sat 2027-01-30) rolls over the weekend to Monday, and the basis says it is provisional
    assert _day(assigned["due_at"]) == date(2027, 2, 1)
    assert assigned["provisional"] is True and "2027年法定节假日安排尚未录入" in assigned["basis"]
    assert "2027年" in case["deadline_basis"]


def test_warning_times_follow_the_policy(assign):
    freeze(beijing(2025, 9, 22))
    case = assign.case(assign.register(region_code="411303"))
    notice, assigned = _stage(case, "acceptance_notice"), _stage(case, "assigned")
    # 3 days before the acceptance deadline; 20% of the span before the assigned deadline
    assert (datetime.fromisoformat(notice["due_at"]) - datetime.fromisoformat(notice["warn_at"])).days == 3
    span = datetime.fromisoformat(assigned["due_at"]) - beijing(2025, 9, 22)
    before = datetime.fromisoformat(assigned["due_at"]) - datetime.fromisoformat(assigned["warn_at"])
    assert abs(before - span * 0.2).total_seconds() < 1
    assert _stage(case, "objection")["warn_at"] is None  # the objection window warns nobody


def test_policy_change_applies_to_new_stages_and_recompute_on_request(assign):
    # Given a case accepted under the statutory 60 days
    old = _accepted(assign, beijing(2025, 6, 30))
    # When an admin shortens handling to 45 days (a new policy version)
    body = {"step": "handling", "length": 45, "unit": "calendar_days", "basis": "本地试行：45日内办结",
            "warn_before_days": 5}
    r = assign.client.put("/assign/api/v1/admin/deadline-policies/handling", json=body, headers=assign.admin())
    assert r.status_code == 200 and r.json["version"] == 2
    # Then a case accepted now uses version 2, and the old case keeps version 1
    new = _accepted(assign, beijing(2025, 7, 1))
    assert (_stage(new, "handling")["policy_version"], _stage(new, "handling")["length"]) == (2, 45)
    kept = assign.case(old["id"])
    assert (_stage(kept, "handling")["policy_version"], _day(_stage(kept, "handling")["due_at"])) == (1, date(2025, 8, 29))
    # And a recompute with repick moves open stages onto the policies in force
    r = assign.client.post("/assign/api/v1/admin/deadlines/recompute", json={"repick": True}, headers=assign.admin())
    assert r.status_code == 200 and r.json["repicked"] >= 1
    moved = _stage(assign.case(old["id"]), "handling")
    assert (moved["policy_version"], _day(moved["due_at"])) == (2, date(2025, 8, 14))
    # A policy without a legal basis is refused
    bad = assign.client.put("/assign/api/v1/admin/deadline-policies/x", json={**body, "basis": ""}, headers=assign.admin())
    assert bad.status_code == 422


def test_calendar_change_recomputes_open_stages(assign):
    # Given a case whose handling ends Fri 2025-08-29
    case = _accepted(assign, beijing(2025, 6, 30))
    # When the operator declares 08-29 a rest day (override table) and asks for a recompute
    assign.runtime.extras["calendar"] = WorkCalendar(overrides={date(2025, 8, 29): "restday"})
    r = assign.client.post("/assign/api/v1/admin/deadlines/recompute", json={}, headers=assign.admin())
    assert r.status_code == 200 and r.json["changed"] >= 1
    # Then the deadline rolls over the weekend to Monday 09-01, and the case's headline follows
    after = assign.case(case["id"])
    assert _day(_stage(after, "handling")["due_at"]) == date(2025, 9, 1)
    assert _day(after["due_at"]) == _day(_stage(after, "assigned")["due_at"])  # assigned (交办) leads the case


def test_the_recompute_command_on_the_apps_cli(assign):
    _accepted(assign, beijing(2025, 6, 30))
    assign.runtime.extras["calendar"] = WorkCalendar(overrides={date(2025, 8, 29): "restday"})
    result = assign.app.test_cli_runner().invoke(args=["recompute-deadlines"])
    assert result.exit_code == 0, result.output
    assert "'changed': " in result.output and "'changed': 0" not in result.output
