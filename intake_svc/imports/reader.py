"""Reading a ledger file (xlsx, first sheet; or csv in UTF-8, with or without BOM, or GB18030).

The header row is the first row that names 台账编号 among the first ten (a title
row above it is common), otherwise row 1.  Rows keep their number in the sheet.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from intake_svc.imports.columns import BY_HEADER, COLUMNS, is_blank, normalise_header

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"  # the legacy binary format (.xls)
HEADER_SCAN_ROWS = 10


class LedgerFileError(ValueError):
    """The file as a whole cannot be imported; nothing is stored.  ``status`` is the HTTP answer."""

    def __init__(self, message: str, *, status: int = 422, missing: list[str] | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.missing = message, status, missing or []


@dataclass
class Sheet:
    headers: list[str]  # normalised, known or not; "" for empty header cells
    rows: list[tuple[int, dict[str, object]]]  # (row number in the sheet, known header -> raw value)
    warnings: list[str] = field(default_factory=list)


def kind_of(file_name: str, content: bytes) -> str:
    name = (file_name or "").lower()
    if content.startswith(XLS_MAGIC) or name.endswith(".xls"):
        raise LedgerFileError("the legacy .xls format is not supported; save the ledger as .xlsx or csv "
                              "(请另存为 xlsx 或 csv)", status=415)
    if content.startswith(XLSX_MAGIC) or name.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if name.endswith((".csv", ".txt")):
        return "csv"
    raise LedgerFileError(f"not an xlsx or csv file: {file_name or '(no name)'} (仅支持 xlsx 或 csv 文件)", status=415)


def read_ledger(file_name: str, content: bytes, *, need_system: bool = True) -> Sheet:
    """The ledger's rows by header; raises LedgerFileError for an unreadable file or missing columns."""
    if not content:
        raise LedgerFileError("the file is empty (文件为空)")
    raw = _xlsx_rows(content) if kind_of(file_name, content) == "xlsx" else _csv_rows(content)
    if not raw:
        raise LedgerFileError("the file has no rows (文件没有内容)")
    header_at = next((i for i, (_, row) in enumerate(raw[:HEADER_SCAN_ROWS])
                      if "台账编号" in {normalise_header(v) for v in row}), 0)
    headers = [normalise_header(v) for v in raw[header_at][1]]
    required = [c.header for c in COLUMNS if c.required or (c.key == "system" and need_system)]
    missing = [h for h in required if h not in headers]
    if missing:
        raise LedgerFileError(f"missing required columns: {', '.join(missing)} (缺少必需的列)", missing=missing)
    doubled = sorted({h for h in headers if h and headers.count(h) > 1})
    if doubled:
        raise LedgerFileError(f"columns appear more than once: {', '.join(doubled)} (列名重复)")
    warnings = []
    unknown = [h for h in headers if h and h not in BY_HEADER]
    if unknown:
        warnings.append(f"unknown columns ignored: {', '.join(unknown)} (未识别的列已忽略)")
    known = [(i, h) for i, h in enumerate(headers) if h in BY_HEADER]
    rows = []
    for number, values in raw[header_at + 1:]:
        row = {h: values[i] if i < len(values) else None for i, h in known}
        if not all(is_blank(v) for v in row.values()):
            rows.append((number, row))
    return Sheet(headers, rows, warnings)


def _xlsx_rows(content: bytes) -> list[tuple[int, list]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        try:
            if not wb.worksheets:
                raise LedgerFileError("the workbook has no sheet (工作簿中没有工作表)")
            return [(n, list(values)) for n, values in enumerate(wb.worksheets[0].iter_rows(values_only=True), 1)]
        finally:
            wb.close()
    except LedgerFileError:
        raise
    except Exception as exc:  # zipfile, XML and openpyxl errors alike: the file is damaged
        raise LedgerFileError(f"not a readable xlsx file ({type(exc).__name__}); open it in Excel and save it again "
                              "(xlsx 文件损坏或格式不正确)") from None


def _csv_rows(content: bytes) -> list[tuple[int, list]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes almost any byte string
        raise LedgerFileError("the csv is neither UTF-8 nor GB18030 text (编码无法识别)")
    if "\x00" in text:
        raise LedgerFileError("the csv contains binary data; is it really a csv? (不是文本文件)")
    try:
        return [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text, newline="")), 1)]
    except csv.Error as exc:
        raise LedgerFileError(f"not a readable csv: {exc} (csv 格式错误)") from None
