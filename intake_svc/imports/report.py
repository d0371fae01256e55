"""The row-level error report of an import (错误报告): 行号, 字段, 原因 — as csv or xlsx.

The csv is UTF-8 with a BOM, so that Excel shows the Chinese correctly.
"""
from __future__ import annotations

import csv
import io
from pathlib import PurePath

HEADERS = ("行号", "字段", "原因")


def _rows(errors: list[dict]) -> list[tuple]:
    return [(e["row"], e["field"], e["reason"]) for e in sorted(errors, key=lambda e: e["row"])]


def errors_csv(errors: list[dict]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(HEADERS)
    writer.writerows(_rows(errors))
    return out.getvalue().encode("utf-8-sig")


def errors_xlsx(errors: list[dict]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("错误报告")
    ws.append(list(HEADERS))
    for row in _rows(errors):
        ws.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def report_name(file_name: str, ext: str) -> str:
    """``台账.xlsx`` -> ``台账.errors.csv``."""
    stem = PurePath((file_name or "ledger").replace("\\", "/")).stem or "ledger"
    return f"{stem}.errors.{ext}"
