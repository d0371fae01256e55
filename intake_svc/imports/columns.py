"""The ledger's columns (台账列): Chinese header -> registration field, and cell conversion.

| 列 (header)     | field                      | kind     | notes                                             |
|-----------------|----------------------------|----------|---------------------------------------------------|
| 台账编号 *      | county_no                  | code     | required on every row: re-import is idempotent    |
| 登记系统        | system                     | text     | empty: the default (``--system`` / form ``system``) |
| 信访形式 *      | channel                    | text     | 来访, 来信, 来电, 网上信访, …                      |
| 信访目的 *      | purpose                    | text     | 求决, 申诉, 检举控告, 建议意见, 其他                |
| 信访日期 *      | petitioned_at              | datetime | date only = 00:00 Asia/Shanghai                   |
| 登记日期        | registered_at              | datetime | empty: now                                        |
| 标题 *          | title                      | text     |                                                   |
| 诉求 *          | request_text               | text     |                                                   |
| 事实理由        | facts                      | text     |                                                   |
| 内容分类 *      | category                   | text     | a name (城乡建设, 城乡建设/物业管理) or a code (03) |
| 问题属地 *      | region_code                | code     | 6- or 12-digit region code                        |
| 被反映人/单位   | complained_party           | text     |                                                   |
| 涉及人数        | people_count               | int      | empty: 1                                          |
| 信访人姓名      | petitioners.0.name         | text     | the main petitioner (all four empty: none)        |
| 身份证号        | petitioners.0.id_number    | code     | keep the column as text in Excel                  |
| 联系电话        | petitioners.0.phone        | code     |                                                   |
| 住址代码        | petitioners.0.address_code | code     |                                                   |
| 涉法涉诉, 重大紧急, 匿名, 保密, 初信初访 | legal_litigation, urgent, anonymous, confidential, first_time | bool | 是/否 |

``*``: the column must be present (登记系统 too, unless a default system is given).
Headers are matched after trimming spaces and a leading ``*``; a few common
variants are accepted (``ALIASES``).  Other columns are ignored with a warning.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Column:
    header: str
    key: str  # dotted path in the registration data
    kind: str = "text"  # text | code | datetime | int | bool
    required: bool = False  # the column must be present in the header row
    example: object = ""


COLUMNS: tuple[Column, ...] = (
    Column("台账编号", "county_no", "code", True, "WC-2025-0001"),
    Column("登记系统", "system", example="wancheng-xf"),
    Column("信访形式", "channel", required=True, example="来访"),
    Column("信访目的", "purpose", required=True, example="求决"),
    Column("信访日期", "petitioned_at", "datetime", True, "2025-03-18"),
    Column("登记日期", "registered_at", "datetime", example="2025-03-18 10:20"),
    Column("标题", "title", required=True, example="小区房产证多年未办理"),
    Column("诉求", "request_text", required=True, example="请政府督促开发商办理房产证。"),
    Column("事实理由", "facts", example="2021年交房，至今未办证。"),
    Column("内容分类", "category", required=True, example="城乡建设"),
    Column("问题属地", "region_code", "code", True, "411302"),
    Column("被反映人/单位", "complained_party", example="某某房地产开发有限公司"),
    Column("涉及人数", "people_count", "int", example=1),
    Column("信访人姓名", "petitioners.0.name", example="张三"),
    Column("身份证号", "petitioners.0.id_number", "code", example="11010519491231002X"),
    Column("联系电话", "petitioners.0.phone", "code", example="13812345678"),
    Column("住址代码", "petitioners.0.address_code", "code", example="411302"),
    Column("涉法涉诉", "legal_litigation", "bool", example="否"),
    Column("重大紧急", "urgent", "bool", example="否"),
    Column("匿名", "anonymous", "bool", example="否"),
    Column("保密", "confidential", "bool", example="否"),
    Column("初信初访", "first_time", "bool", example="是"),
)
BY_HEADER = {c.header: c for c in COLUMNS}
HEADER_OF_KEY = {c.key: c.header for c in COLUMNS}
ALIASES = {"被反映人或单位": "被反映人/单位", "被反映人（单位）": "被反映人/单位", "事实与理由": "事实理由",
           "信访时间": "信访日期", "登记时间": "登记日期", "身份证号码": "身份证号", "电话": "联系电话",
           "手机号码": "联系电话", "信访人": "信访人姓名", "内容类别": "内容分类"}
TRUE, FALSE = {"是", "y", "yes", "true", "1", "√", "有"}, {"否", "n", "no", "false", "0", "×", "无"}
_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?$")


class CellError(ValueError):
    """A cell that cannot be read as its column's kind; ``str(exc)`` is the reason."""


def normalise_header(value) -> str:
    text = re.sub(r"\s+", "", str(value if value is not None else "")).replace("／", "/").lstrip("*＊")
    return ALIASES.get(text, text)


def is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def convert(column: Column, value, tz: str):
    """The cell as the schema expects it (strings, ISO datetimes, ints, bools); None when blank."""
    if is_blank(value):
        return None
    kind = column.kind
    if kind == "datetime":
        return _datetime(value, tz).isoformat()
    if kind == "int":
        if isinstance(value, bool):
            raise CellError("must be a whole number (须为整数)")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            return int(value)
        raise CellError("must be a whole number (须为整数)")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(int(value) if isinstance(value, float) and value.is_integer() else value).strip().lower()
        if text in TRUE or text in FALSE:
            return text in TRUE
        raise CellError("must be 是 or 否 (须填“是”或“否”)")
    if isinstance(value, float):
        if kind == "code" and abs(value) >= 2 ** 53:
            raise CellError("stored as a number, digits are lost; format the column as text "
                            "(数字精度丢失，请将该列设为文本格式)")
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value).strip()


def _datetime(value, tz: str) -> datetime:
    zone = ZoneInfo(tz)
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, time(), zone)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 1 <= value < 2958466:
        return (datetime(1899, 12, 30) + timedelta(days=float(value))).replace(microsecond=0, tzinfo=zone)  # serial
    text = str(value).strip()
    plain = text.replace("年", "-").replace("月", "-").replace("日", " ").replace("/", "-").replace(".", "-").strip()
    if m := _DATE.match(plain):
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in m.groups())
        try:
            return datetime(y, mo, d, h, mi, s, tzinfo=zone)
        except ValueError:
            raise CellError(f"invalid date {text} (日期无效)") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise CellError(f"not a date or time: {text[:40]} (日期格式错误，应为 2025-03-18 或 2025-03-18 10:20)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)


def template_xlsx() -> bytes:
    """The ledger template: the headers (required ones marked in the note row) and one example row."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    wb = Workbook()
    ws = wb.active
    ws.title = "台账"
    ws.append([c.header for c in COLUMNS])
    ws.append([c.example for c in COLUMNS])
    for idx, column in enumerate(COLUMNS, start=1):
        cell = ws.cell(row=1, column=idx)
        cell.font = Font(bold=True, color="C00000" if column.required else "000000")
        if column.required:
            cell.comment = Comment("必填列", "xinfang")
        if column.kind == "code":
            for row in range(2, 1002):
                ws.cell(row=row, column=idx).number_format = "@"  # text, so numbers keep every digit
        ws.column_dimensions[cell.column_letter].width = max(10, 2 * len(column.header) + 4)
    ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
