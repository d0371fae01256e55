"""The daily assignment batch (日交办): every case handed to a unit on one local day, as an xlsx sheet."""
from __future__ import annotations

import io
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from assign_svc.models import Case, Person, Unit

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEADER = ("序号", "信访件编号", "信访人", "内容分类", "问题属地", "诉求摘要", "交办方式", "交办时间", "办理期限",
          "期限依据", "包案领导", "当前状态")
MODE_LABELS = {"assign": "交办", "forward": "转送", "divert": "涉法涉诉分流"}


def cases_of_day(session: Session, *, unit_id: str, day: date, tz: str) -> list[Case]:
    start = datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))
    stmt = (select(Case).where(Case.unit_id == unit_id, Case.assigned_at >= start,
                               Case.assigned_at < start + timedelta(days=1)).order_by(Case.assigned_at))
    return list(session.scalars(stmt))


def _local(instant: datetime, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M")


def daily_batch_xlsx(session: Session, *, unit_id: str, day: date, tz: str) -> tuple[bytes, int]:
    """(the workbook's bytes, the number of cases) for ``unit_id`` on local ``day``."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font

    unit = session.get(Unit, unit_id)
    cases = cases_of_day(session, unit_id=unit_id, day=day, tz=tz)
    book = Workbook()
    sheet = book.active
    sheet.title = "日交办清单"
    sheet.append([f"{unit.name if unit else unit_id} 日交办清单（{day.year}年{day.month}月{day.day}日，共{len(cases)}件）"])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(list(HEADER))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for i, case in enumerate(cases, start=1):
        leader = session.get(Person, case.leader_id) if case.leader_id else None
        sheet.append([i, case.display_no, case.petitioner_name or "", case.category, case.region_code,
                      (case.request_text or "")[:100], MODE_LABELS.get(case.mode, case.mode),
                      _local(case.assigned_at, tz), _local(case.due_at, tz), case.deadline_basis,
                      leader.name if leader else "", case.status])
    for column, width in zip("ABCDEFGHIJKL", (6, 22, 10, 14, 14, 40, 10, 18, 18, 40, 10, 12), strict=True):
        sheet.column_dimensions[column].width = width
    for row in sheet.iter_rows(min_row=3):
        row[5].alignment = Alignment(wrap_text=True)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue(), len(cases)
