"""月通报 / 季排队 / 年总评: JSON, xlsx, jurisdiction scoping and roles."""
from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from supervise_svc.scores import SETTINGS_KEY
from tests.scores.test_colours import T, handled, only_on_time

API = "/supervise/api/v1"


@pytest.fixture
def three_months(sup):
    """Aug–Oct 2026 computed with score = 按期办结率 × 100 for 宛城区's 4 townships:
    T1 0/0/50, T2 50/100/100, T3 100/50/0, T4 100/100/100."""
    sup.directory()
    sup.runtime.extras[SETTINGS_KEY] = only_on_time()
    plan = {8: {1: (0, 2), 2: (1, 1), 3: (2, 0), 4: (2, 0)},
            9: {1: (0, 2), 2: (2, 0), 3: (1, 1), 4: (2, 0)},
            10: {1: (1, 1), 2: (2, 0), 3: (0, 2), 4: (2, 0)}}
    for month, towns in plan.items():
        for township, (good, bad) in towns.items():
            handled(sup, township, month, good, bad)
        assert sup.compute(f"2026-{month:02d}").status_code == 200
    return sup


def test_monthly_bulletin_is_scoped_to_the_callers_jurisdiction(three_months):
    sup = three_months
    city = sup.client.get(f"{API}/scorecards/2026-09", headers=sup.headers(role="leader", jurisdiction="411300"))
    county = sup.client.get(f"{API}/scorecards/2026-09", headers=sup.headers(jurisdiction="411302"))
    other = sup.client.get(f"{API}/scorecards/2026-09", headers=sup.headers(jurisdiction="411303"))

    assert city.status_code == county.status_code == other.status_code == 200
    assert len(city.json["rows"]) == 15
    assert [r["unit_id"] for r in county.json["rows"]] == ["411302-gov", T[2], T[4], T[3], T[1]]
    assert [(r["rank"], r["colour"], r["score"]) for r in county.json["rows"][1:]] == [
        (1, None, 100.0), (2, None, 100.0), (3, None, 50.0), (4, "yellow", 0.0)]
    assert county.json["summary"] == {"blue": 0, "yellow": 1, "red": 0}
    assert {r["unit_id"][:6] for r in other.json["rows"]} == {"411303"}
    assert sup.client.get(f"{API}/scorecards/2026-07", headers=sup.headers()).status_code == 404
    assert sup.client.get(f"{API}/scorecards/2026-09", headers=sup.headers(role="handler")).status_code == 403


def test_monthly_xlsx_holds_the_rows(three_months):
    sup = three_months
    r = sup.client.get(f"{API}/scorecards/2026-10.xlsx", headers=sup.headers(jurisdiction="411302"))

    assert r.status_code == 200 and r.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(r.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0].startswith("2026-10 三率三色月通报")
    header = rows[1]
    assert header[:9] == ("序号", "单位", "层级", "排名组", "排名", "组内单位数", "综合得分", "颜色", "连续落后月数")
    body = rows[2:]
    assert len(body) == 5
    last = body[-1]
    assert last[1:9] == ("宛城区第3镇", "乡镇（街道）", "宛城区人民政府", 4, 4, 0.0, "黄色警告", 2)
    assert last[header.index("按期办结率")] == "0.00%" and last[header.index("满意率")] == "不适用"
    assert last[header.index("办理期限到期")] == 2 and last[header.index("超期办结")] == 2
    assert body[-2][1] == "宛城区第1镇" and body[-2][7] == "红色问责"


def test_quarterly_and_annual_rank_the_average_monthly_score(three_months):
    sup = three_months
    q3 = sup.client.get(f"{API}/reports/quarterly/2026Q3", headers=sup.headers(jurisdiction="411302"))
    year = sup.client.get(f"{API}/reports/annual/2026", headers=sup.headers(jurisdiction="411302"))

    assert q3.status_code == 200 and year.status_code == 200
    assert q3.json["months"] == ["2026-08", "2026-09"]
    towns = [(r["unit_id"], r["average_score"], r["rank"], r["blue_months"], r["yellow_months"])
             for r in q3.json["rows"] if r["level"] == "township"]
    assert towns == [(T[4], 100.0, 1, 0, 0), (T[2], 75.0, 2, 0, 0), (T[3], 75.0, 3, 0, 0), (T[1], 0.0, 4, 1, 1)]
    towns = [(r["unit_id"], r["average_score"], r["rank"], r["red_months"])
             for r in year.json["rows"] if r["level"] == "township"]
    assert towns == [(T[4], 100.0, 1, 0), (T[2], 83.3333, 2, 0), (T[3], 50.0, 3, 0), (T[1], 16.6667, 4, 1)]
    book = sup.client.get(f"{API}/reports/annual/2026.xlsx", headers=sup.headers(jurisdiction="411302"))
    rows = list(load_workbook(io.BytesIO(book.data)).active.iter_rows(values_only=True))
    assert rows[1][-3:] == ("2026-08 得分", "2026-09 得分", "2026-10 得分")
    assert rows[-1][1] == "宛城区第1镇" and rows[-1][-3:] == (0.0, 0.0, 50.0)
    assert sup.client.get(f"{API}/reports/quarterly/2026Q1", headers=sup.headers()).status_code == 404
    assert sup.client.get(f"{API}/reports/quarterly/2026Q5", headers=sup.headers()).status_code == 422
