"""The simulator plays days of petitions through the embedded system; what it expects each of the
five checks to catch must be exactly what supervision reports (several seeds)."""
from __future__ import annotations

from datetime import date

import pytest

from shared import clock
from shared.simulator import demo
from shared.simulator.workload import Params, Workload, id_number, unit_profiles
from shared.identity import normalize_id_number

PLACES = [("411302001000", "411302", "东关街道"), ("411321100000", "411321", "城关镇")]


def test_the_workload_is_the_same_for_the_same_seed():
    a, b = Workload(Params(seed=11), PLACES), Workload(Params(seed=11), PLACES)
    days_a = [[(p.key, p.channel, p.category, p.request_text) for p in a.day(d)] for d in range(5)]
    days_b = [[(p.key, p.channel, p.category, p.request_text) for p in b.day(d)] for d in range(5)]
    assert days_a == days_b and sum(map(len, days_a)) > 20
    c = Workload(Params(seed=12), PLACES)
    assert [[p.request_text for p in c.day(d)] for d in range(5)] != [[t[3] for t in day] for day in days_a]


def test_generated_identity_numbers_are_valid_and_profiles_are_mixed():
    import random

    rng = random.Random(3)
    for _ in range(200):
        number = id_number(rng, "411302")
        assert normalize_id_number(number, today=date(2026, 11, 22)) == number
    profiles = unit_profiles(1, [f"u{i}" for i in range(200)])
    counts = {k: list(profiles.values()).count(k) for k in ("good", "slow", "sloppy")}
    assert counts["good"] > counts["slow"] > 0 and counts["sloppy"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 5])
def test_expected_equals_reported(settings, tmp_path, seed):
    settings = demo.settings_for_demo(settings, tmp_path / f"sim{seed}")
    try:
        system, sim = demo.simulate(settings, Params(seed=seed, days=12, per_day=7), start=date(2026, 9, 1))
    finally:
        clock.configure(settings.replace(clock_control=False))
    summary = sim.summary
    assert summary.registered > 60 and summary.rejected == 0
    assert summary.routed == summary.registered
    assert summary.closed > 0
    due_for_a_call = [t for t in sim.tracks if t.closed_day is not None and t.closed_day <= 12 - 4]
    assert summary.followups > 0 or not due_for_a_call
    assert summary.colours  # the month's scorecard was computed (and the lagging check ran with it)
    ok, lines = sim.check()
    assert ok, "\n".join(lines)
    sim.extra_summary()
    assert 0 < summary.closed_on_time <= summary.closed
    # recipients acknowledge (签收) as their unit's profile says; the late and the never escalate
    assert summary.acknowledged > 0 and summary.ack_refused == 0
    assert 0 < summary.notices["acknowledged"] < summary.notices["inbox"]
    escalated = sim.pages("/notify/api/v1/notices", sim.admin(), {"notice_type": "unacknowledged"}, size=100)
    assert escalated, "a slow or sloppy recipient's notice escalated"
    expected = sim.expected()
    assert sum(len(v) for v in expected.values()) > 0  # the month must exercise the checks


def test_a_folder_with_other_data_is_never_emptied(settings, tmp_path):
    folder = tmp_path / "live"
    folder.mkdir()
    (folder / "assign.db").write_text("a live system's data")
    with pytest.raises(demo.ForeignData):
        demo.simulate(demo.settings_for_demo(settings, folder), Params(seed=1, days=1))
    assert (folder / "assign.db").read_text() == "a live system's data"
