"""The pure rules of 三率三色: rates, the composite, ranks, zones, months."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from supervise_svc.scores import domain
from supervise_svc.scores.domain import GroupCut, load_settings


def counts(**given) -> dict:
    return {**dict.fromkeys(domain.COUNTS, 0), **given}


def test_an_empty_denominator_is_not_applicable_and_drops_its_weight():
    settings = load_settings(weights={"on_time": 3, "satisfaction": 1, "cross_level": 1})
    rates = domain.rates_of(counts(handling_due=4, closed_on_time=3, visits=5, cross_level_visits=1), None)

    assert rates["satisfaction"] is None and rates["per_10k"] is None
    assert rates["on_time"] == 0.75 and rates["cross_level"] == 0.2
    # (3·75 + 1·(100·(1 − 0.2))) / (3 + 1) — 满意率 not applicable, its weight dropped
    assert domain.composite(rates, settings) == 76.25
    assert domain.composite(domain.rates_of(counts(), None), settings) is None


def test_per_10k_is_capped():
    settings = load_settings()
    assert domain.sub_score("per_10k", 2.0, settings) == pytest.approx(60.0)
    assert domain.sub_score("per_10k", 9.0, settings) == 0.0
    assert domain.rates_of(counts(petitions=3), 30000)["per_10k"] == 1.0


def test_ranks_break_ties_by_unit_id_and_skip_unscored_units():
    assert domain.rank({"b": 80.0, "a": 80.0, "c": 90.0, "d": None}) == {"c": 1, "a": 2, "b": 3, "d": None}


def test_a_tie_across_the_zone_boundary_escapes_the_zone():
    cut = GroupCut(blue_count=1, blue_max_share=1.0, near_count=2, near_max_share=1.0)
    scores = {"a": 90.0, "b": 50.0, "c": 50.0, "d": 10.0}
    near, blue = domain.bottom_zones(scores, domain.rank(scores), cut)
    assert (near, blue) == ({"d"}, {"d"})  # b and c tie on the boundary of the near zone
    flat = {"a": 100.0, "b": 100.0}
    assert domain.bottom_zones(flat, domain.rank(flat), cut) == (set(), set())


def test_months_are_local_to_shanghai():
    start, end = domain.month_bounds("2026-10", "Asia/Shanghai")
    assert start == datetime(2026, 9, 30, 16, tzinfo=timezone.utc)
    assert end == datetime(2026, 10, 31, 16, tzinfo=timezone.utc)
    assert domain.shift_month("2026-01", -1) == "2025-12" and domain.shift_month("2026-12", 1) == "2027-01"
    assert domain.local_month_of(datetime(2026, 10, 31, 17, tzinfo=timezone.utc), "Asia/Shanghai") == "2026-11"
    for bad in ("2026-13", "2026-1", "26-10", "2026/10"):
        with pytest.raises(ValueError):
            domain.parse_month(bad)


def test_the_settings_version_changes_with_the_settings():
    assert load_settings().label == load_settings().label
    assert load_settings().label != load_settings(thresholds={"on_time": 0.7}).label
    assert load_settings().label.startswith("v1:")
