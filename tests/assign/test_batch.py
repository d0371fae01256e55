"""日交办: the daily sheet of cases handed to a unit, downloadable as xlsx."""
from __future__ import annotations

import io

from openpyxl import load_workbook

from tests.assign.conftest import beijing, freeze


def test_the_daily_batch_lists_the_units_cases_of_that_day(assign):
    # Given two housing cases on 09-22, one on 09-23, and one for another unit
    freeze(beijing(2025, 9, 22, 9))
    first = assign.case(assign.register(petitioner_name="王五"))
    assign.register(petitioner_name="赵六", request_text="扶贫搬迁房漏雨", category="城乡建设")
    assign.register(category="劳动和社会保障")
    freeze(beijing(2025, 9, 23, 9))
    assign.register()
    # When the unit downloads its batch of 09-22
    who = assign.unit("411302-zjj")
    r = assign.client.get("/assign/api/v1/batches/daily", query_string={"unit_id": "411302-zjj", "date": "2025-09-22"},
                          headers=assign.headers(**who))
    # Then it is an xlsx sheet with both of that day's cases, oldest first, deadlines in Beijing time
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(r.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "宛城区住房和城乡建设局 日交办清单（2025年9月22日，共2件）"
    assert rows[1][:4] == ("序号", "信访件编号", "信访人", "内容分类")
    assert [(r[0], r[2]) for r in rows[2:]] == [(1, "王五"), (2, "赵六")]
    assert rows[2][1] == first["display_no"] and rows[2][8] == "2025-11-21 23:59" and rows[3][8] == "2025-09-29 23:59"
    # And another unit may not download it
    other = assign.unit("411302-rsj")
    r = assign.client.get("/assign/api/v1/batches/daily", query_string={"unit_id": "411302-zjj", "date": "2025-09-22"},
                          headers=assign.headers(**other))
    assert r.status_code == 403
