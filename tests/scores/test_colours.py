"""Colours over months: blue at the bottom, yellow after two months near the bottom, red after three."""
from __future__ import annotations

from supervise_svc.scores import SETTINGS_KEY
from supervise_svc.scores.domain import GroupCut, load_settings, standing
from tests.scores.conftest import bj, freeze

T = {i: f"411302{i:03d}000" for i in range(1, 5)}


def only_on_time(**extra):
    """Score = 按期办结率 × 100; townships: blue = the last one, near the bottom = the last two."""
    return load_settings(weights={"on_time": 1}, colours={
        "township": {"blue_count": 1, "blue_max_share": 1.0, "near_count": 2, "near_max_share": 1.0},
        "county": {"blue_count": 1, "blue_max_share": 1.0, "near_count": 1, "near_max_share": 1.0},
        "yellow_after": 2, "red_after": 3, "streak_resets": True}, **extra)


def handled(sup, township: int, month: int, on_time: int, late: int) -> None:
    for i in range(on_time + late):
        due = bj(2026, month, 10 + i)
        closed = due if i < on_time else bj(2026, month, 25)
        sup.case(T[township], registered_at=bj(2026, month, 1), closed_at=closed,
                 stages=[("handling", bj(2026, month, 1), due, closed)])


def test_blue_then_yellow_then_red_with_streaks_reset_by_a_good_month(sup_on):
    # Given 宛城区's 4 townships ranked by 按期办结率 over Aug–Oct 2026:
    #   Aug: T1 0%, T2 50%, T3 100%, T4 100% → near the bottom: T2, T1; blue: T1
    #   Sep: T1 0%, T2 100%, T3 50%, T4 100% → near: T3, T1 (T1 two months running → yellow)
    #   Oct: T1 50%, T2 100%, T3 0%, T4 100% → near: T1 (three months → red), T3 (two → yellow)
    sup_on.directory()
    sup_on.runtime.extras[SETTINGS_KEY] = only_on_time()
    plan = {8: {1: (0, 2), 2: (1, 1), 3: (2, 0), 4: (2, 0)},
            9: {1: (0, 2), 2: (2, 0), 3: (1, 1), 4: (2, 0)},
            10: {1: (1, 1), 2: (2, 0), 3: (0, 2), 4: (2, 0)}}
    for month, towns in plan.items():
        for township, (good, bad) in towns.items():
            handled(sup_on, township, month, good, bad)

    got = {}
    for month in ("2026-08", "2026-09", "2026-10"):
        assert sup_on.compute(month).status_code == 200
        rows = sup_on.rows(month)
        got[month] = [(rows[T[i]].rank, rows[T[i]].streak, rows[T[i]].colour) for i in range(1, 5)]

    assert got["2026-08"] == [(4, 1, "blue"), (3, 1, None), (1, 0, None), (2, 0, None)]
    assert got["2026-09"] == [(4, 2, "yellow"), (1, 0, None), (3, 1, None), (2, 0, None)]
    assert got["2026-10"] == [(3, 3, "red"), (1, 0, None), (4, 2, "yellow"), (2, 0, None)]
    # Lagging findings: colour → rung; threshold only (按期办结率 < 80%) → 催办.
    # 宛城区 itself: 5 of 8 on time each month (62.5%) and the only ranked county (no colour).
    # (The ladder may start a unit's repeated findings higher: the requested rung is in the evidence.)
    found = sorted((f.cycle, f.unit_id, f.evidence["initial_rung"]) for f in sup_on.findings("lagging"))
    assert found == [("2026-08", "411302-gov", "urge"), ("2026-08", T[1], "bulletin"), ("2026-08", T[2], "urge"),
                     ("2026-09", "411302-gov", "urge"), ("2026-09", T[1], "interview"), ("2026-09", T[3], "urge"),
                     ("2026-10", "411302-gov", "urge"), ("2026-10", T[1], "accountability"),
                     ("2026-10", T[3], "interview")]
    by_key = {(f.cycle, f.unit_id): f for f in sup_on.findings("lagging")}
    yellow, red = by_key["2026-09", T[1]], by_key["2026-10", T[1]]
    assert (yellow.rung, yellow.evidence["colour"], yellow.evidence["month"]) == ("interview", "yellow", "2026-09")
    assert (red.rung, red.evidence["colour"], red.evidence["streak"]) == ("accountability", "red", 3)

    # Recomputing September (after October) reproduces it and opens nothing new.
    before = {u: (r.rank, r.streak, r.colour, r.score) for u, r in sup_on.rows("2026-09").items()}
    r = sup_on.compute("2026-09")
    assert r.json["findings_opened"] == 0
    assert {u: (r.rank, r.streak, r.colour, r.score) for u, r in sup_on.rows("2026-09").items()} == before
    assert len(sup_on.findings("lagging")) == 9


def test_a_good_month_holds_the_streak_when_streaks_do_not_reset():
    settings = only_on_time()
    holding = load_settings(weights={"on_time": 1}, colours={**settings.raw["colours"], "streak_resets": False})

    assert standing(near=False, blue=False, previous_streak=1, settings=settings).streak == 0
    kept = standing(near=False, blue=False, previous_streak=1, settings=holding)
    assert (kept.streak, kept.colour) == (1, None)
    again = standing(near=True, blue=False, previous_streak=kept.streak, settings=holding)
    assert (again.streak, again.colour) == (2, "yellow")


def test_bottom_sizes_scale_down_for_small_counties():
    cut = GroupCut(blue_count=10, blue_max_share=0.2, near_count=15, near_max_share=0.3)
    assert cut.sizes(1) == (0, 0)  # a lone township has no bottom
    assert cut.sizes(4) == (1, 1)
    assert cut.sizes(12) == (2, 3)
    assert cut.sizes(85) == (10, 15)


def test_the_sweep_computes_the_finished_month_once(sup):
    from supervise_svc.scoring import monthly_scorecard

    sup.directory()
    freeze(bj(2026, 11, 1, 0, 5))  # 00:05 on the 1st, Beijing time (still 31 October in UTC)
    assert monthly_scorecard(sup.runtime) == "2026-10"
    assert monthly_scorecard(sup.runtime) is None
    assert len(sup.rows("2026-10")) == 15 and not sup.rows("2026-11")
