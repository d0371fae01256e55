"""Building ledger files (台账) for the import tests: rows keyed by Chinese header, as xlsx or csv bytes."""
from __future__ import annotations

import csv
import io
import uuid

from intake_svc.imports.columns import COLUMNS
from tests.intake.conftest import ID_MAIN

HEADERS = [c.header for c in COLUMNS]


def ledger_row(**overrides) -> dict[str, object]:
    """A valid visit (来访) about 城乡建设 in 宛城区 (411302); override by header: ``ledger_row(标题="…")``."""
    row: dict[str, object] = {
        "台账编号": f"TZ-{uuid.uuid4().hex[:8]}", "登记系统": "wancheng-xf", "信访形式": "来访", "信访目的": "求决",
        "信访日期": "2026-11-18", "登记日期": "2026-11-18 10:20", "标题": "小区房产证多年未办理",
        "诉求": "请政府督促开发商办理房产证。", "事实理由": "2021年交房，至今未办证。", "内容分类": "城乡建设",
        "问题属地": "411302", "被反映人/单位": "某某房地产开发有限公司", "涉及人数": 1, "信访人姓名": "张三",
        "身份证号": ID_MAIN, "联系电话": "13812345678", "住址代码": "411302", "涉法涉诉": "否", "重大紧急": "否",
        "匿名": "否", "保密": "否", "初信初访": "是",
    }
    row.update(overrides)
    return row


def _table(rows: list[dict], headers: list[str] | None) -> list[list]:
    headers = headers or HEADERS
    return [list(headers)] + [[row.get(h) for h in headers] for row in rows]


def xlsx_ledger(rows: list[dict], headers: list[str] | None = None, *, title: str | None = None) -> bytes:
    """The rows as the first sheet of a workbook (a second sheet that must be ignored follows)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    if title:
        ws.append([title])
    for line in _table(rows, headers):
        ws.append(line)
    wb.create_sheet("说明").append(["这一页不是台账"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def csv_ledger(rows: list[dict], headers: list[str] | None = None, *, encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out).writerows([["" if v is None else v for v in line] for line in _table(rows, headers)])
    return out.getvalue().encode(encoding)
