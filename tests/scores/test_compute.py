"""The month's numerators, denominators, rates, score, rank and colour — computed by hand."""
from __future__ import annotations

from tests.scores.conftest import bj

T1 = "411302001000"


def scripted_october(sup) -> None:
    """Given: October 2026 in 宛城区第1镇 (T1), plus cases that must not count."""
    sup.directory(populations={"411302004000": None})
    # c1: 来访 越级, repeat, accepted on time (two acceptance stages: counted once), handled late,
    #     closed & resolved in October, 申诉求决类 属实, graded 满意.
    sup.case(T1, registered_at=bj(2026, 10, 5), channel="来访", cross_level=True, repeat_of="pet-earlier",
             accepted_at=bj(2026, 10, 8), closed_at=bj(2026, 10, 25), resolution="resolved", truth="属实",
             evaluation_grade="满意", evaluated_at=bj(2026, 10, 28), status="closed",
             stages=[("acceptance_notice", bj(2026, 10, 5), bj(2026, 10, 10), bj(2026, 10, 8)),
                     ("acceptance_notice", bj(2026, 10, 9), bj(2026, 10, 14), bj(2026, 10, 9)),
                     ("handling", bj(2026, 10, 8), bj(2026, 10, 20), bj(2026, 10, 25))])
    # c2: accepted late, handling open past its due (overdue at the month's end).
    sup.case(T1, registered_at=bj(2026, 10, 6),
             stages=[("acceptance_notice", bj(2026, 10, 6), bj(2026, 10, 11), bj(2026, 10, 12)),
                     ("handling", bj(2026, 10, 12), bj(2026, 10, 30), None)])
    # c3: 来访 (not 越级), accepted and closed on time, replied only, 检举控告类 不属实, evaluation window expired.
    sup.case(T1, registered_at=bj(2026, 10, 7), channel="来访", statutory_type="检举控告类", truth="不属实",
             closed_at=bj(2026, 10, 14), resolution="replied", evaluation_expired=True, status="closed",
             stages=[("acceptance_notice", bj(2026, 10, 7), bj(2026, 10, 12), bj(2026, 10, 9)),
                     ("handling", bj(2026, 10, 9), bj(2026, 10, 15), bj(2026, 10, 14)),
                     ("evaluation", bj(2026, 10, 15), bj(2026, 10, 31), None)])
    # c4: 涉法涉诉 — excluded from everything.
    sup.case(T1, registered_at=bj(2026, 10, 8), channel="来访", cross_level=True, legal_litigation=True,
             closed_at=bj(2026, 10, 9), resolution="resolved", evaluation_grade="不满意", evaluated_at=bj(2026, 10, 9),
             stages=[("acceptance_notice", bj(2026, 10, 8), bj(2026, 10, 10), None)])
    # c5: registered in September; graded 不满意 in October; its handling due lies in November.
    sup.case(T1, registered_at=bj(2026, 9, 20), closed_at=bj(2026, 9, 30), resolution="resolved",
             evaluation_grade="不满意", evaluated_at=bj(2026, 10, 3),
             stages=[("handling", bj(2026, 9, 21), bj(2026, 11, 20), None)])
    # c6: a village of T1; handling due 10-31 23:00 Beijing (15:00 UTC) still open → overdue.
    sup.case("411302001005", registered_at=bj(2026, 10, 9), channel="来信",
             stages=[("handling", bj(2026, 10, 9), bj(2026, 10, 31, 23), None)])
    # c7: registered 2026-11-01 00:30 Beijing (still October in UTC) → November, not counted.
    sup.case(T1, registered_at=bj(2026, 11, 1, 0, 30), channel="来访", cross_level=True)
    # c8: a county-level location (宛城区 itself): counts for the county, for no township.
    sup.case("411302", registered_at=bj(2026, 10, 10))


T1_COUNTS = {"acceptance_due": 3, "accepted_on_time": 2, "handling_due": 4, "closed_on_time": 1, "closed_late": 1,
             "open_overdue": 2, "evaluated": 2, "satisfied": 1, "evaluation_expired": 1, "evaluation_concluded": 3,
             "petitions": 4, "repeats": 1, "closed": 2, "resolved": 1, "visits": 2, "cross_level_visits": 1,
             "truth_judged": 2, "substantiated": 1}


def test_rates_score_rank_and_colour_of_a_scripted_month(sup_on):
    scripted_october(sup_on)

    r = sup_on.compute("2026-10")

    assert r.status_code == 200, r.json
    assert r.json["findings_opened"] == 2
    rows = sup_on.rows("2026-10")
    t1 = rows[T1]
    assert t1.counts == T1_COUNTS
    assert t1.rates == {"timely_acceptance": 2 / 3, "on_time": 0.25, "participation": 2 / 3, "satisfaction": 0.5,
                        "repeat": 0.25, "resolution": 0.5, "cross_level": 0.5, "truth": 0.5, "per_10k": 2.0}
    # 10·66.667 + 25·25 + 5·66.667 + 20·50 + 10·75 + 10·50 + 10·50 + 5·50 + 5·(100·(1 − 2/5)) = 4925 over 100
    assert t1.score == 49.25
    # 2 and 3 have no cases: only 万人比 applies (0 → 100); 4 has no population: nothing applies.
    assert rows["411302002000"].rates["on_time"] is None
    assert rows["411302002000"].score == 100.0 and rows["411302004000"].score is None
    assert [(u, rows[u].rank) for u in ("411302002000", "411302003000", T1, "411302004000")] == [
        ("411302002000", 1), ("411302003000", 2), (T1, 3), ("411302004000", None)]
    assert t1.peer_size == 3 and t1.peer_group == "411302"
    assert (t1.colour, t1.streak, t1.near_bottom) == ("blue", 1, True)
    assert t1.failed_thresholds == ["on_time", "satisfaction"]
    assert rows["411302002000"].colour is None
    # 宛城区 = T1 + the county-level case c8: 5 petitions per 100,000 residents.
    county = rows["411302-gov"]
    assert county.counts["petitions"] == 5 and county.counts["repeats"] == 1
    assert county.rates["per_10k"] == 0.5 and county.rates["repeat"] == 0.2
    # 4925 − 10·75 + 10·80 − 5·60 + 5·90 = 5125
    assert county.score == 51.25
    assert (county.rank, county.peer_size, county.colour) == (3, 3, "blue")
    assert rows["411303-gov"].rank == 1 and rows["411321-gov"].rank == 2


def test_recompute_replaces_rows_identically_and_opens_no_second_finding(sup_on):
    scripted_october(sup_on)
    assert sup_on.compute("2026-10").status_code == 200
    first = {u: _plain(r) for u, r in sup_on.rows("2026-10").items()}

    r = sup_on.compute("2026-10")

    assert r.status_code == 200 and r.json["findings_opened"] == 0 and r.json["computations"] == 2
    assert {u: _plain(r) for u, r in sup_on.rows("2026-10").items()} == first
    lagging = sup_on.findings("lagging")
    assert sorted((f.unit_id, f.cycle, f.rung) for f in lagging) == [("411302-gov", "2026-10", "bulletin"),
                                                                       (T1, "2026-10", "bulletin")]
    t1 = next(f for f in lagging if f.unit_id == T1)
    assert t1.evidence["colour"] == "blue" and t1.evidence["month"] == "2026-10" and t1.evidence["rank"] == 3
    assert t1.evidence["thresholds_failed"] == {"on_time": 0.8, "satisfaction": 0.9}


def _plain(row) -> dict:
    return {c: getattr(row, c) for c in ("unit_id", "unit_name", "level", "region_code", "peer_group", "peer_size",
                                         "population", "counts", "rates", "score", "rank", "near_bottom", "streak",
                                         "colour", "failed_thresholds")}


def test_compute_needs_a_started_month_and_a_supervisor(sup):
    sup.directory(populations={"411302004000": None})
    assert sup.compute("2026-12").status_code == 409
    assert sup.compute("2026-13").status_code == 422
    assert sup.compute("2026-10", role="leader").status_code == 403
    assert sup.compute("2026-10", role="admin").status_code == 200
