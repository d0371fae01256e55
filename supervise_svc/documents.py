"""约谈通知书 and 约谈记录 as printable .docx files (python-docx), rendered on request."""
from __future__ import annotations

import io
from datetime import datetime
from zoneinfo import ZoneInfo

from supervise_svc.models import Finding, Interview, Interviewee, RectificationItem

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
POST_LABELS = {"party_secretary": "党委（党组）书记", "head": "主要负责人", "deputy": "分管负责人",
               "office_director": "办公室主任", "handler": "承办人"}


def _when(at: datetime | None, tz: str) -> str:
    if at is None:
        return "（待定）"
    local = at.astimezone(ZoneInfo(tz))
    return f"{local.year}年{local.month}月{local.day}日{local.hour:02d}时{local.minute:02d}分"


def _day(at: datetime, tz: str) -> str:
    local = at.astimezone(ZoneInfo(tz))
    return f"{local.year}年{local.month}月{local.day}日"


def _document(title: str, number: str):
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    document = Document()
    heading = document.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = heading.add_run(title)
    run.bold, run.font.size = True, Pt(18)
    numbered = document.add_paragraph(f"编号：{number}")
    numbered.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    return document


def _bytes(document) -> bytes:
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _who(p: Interviewee) -> str:
    return f"{p.unit_name}{p.title or POST_LABELS.get(p.post, p.post)}{p.name}"


def interview_notice(interview: Interview, people: list[Interviewee], finding: Finding | None, *, tz: str,
                     issued_at: datetime) -> bytes:
    """约谈通知书 to the people called in."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH

    document = _document("约谈通知书", interview.interview_no)
    document.add_paragraph("、".join(_who(p) for p in people) + "：")
    cause = (f"因{interview.unit_name}在信访工作中存在“{finding.evidence.get('text') or ''}”等问题"
             f"（督查件{finding.finding_no}）") if finding else f"因{interview.unit_name}信访工作存在问题"
    document.add_paragraph(f"{cause}，经研究，决定对你们进行约谈。现将有关事项通知如下：")
    document.add_paragraph(f"一、约谈时间：{_when(interview.scheduled_at, tz)}")
    document.add_paragraph(f"二、约谈地点：{interview.place or '（待定）'}")
    document.add_paragraph(f"三、约谈主持人：{interview.chair or '（待定）'}")
    document.add_paragraph("四、请被约谈人准时参加，并就存在的问题、原因分析及整改措施作表态发言。")
    for text in (interview.convening_body or "信访工作联席会议办公室", _day(issued_at, tz)):
        p = document.add_paragraph(text)
        p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    return _bytes(document)


def interview_record(interview: Interview, people: list[Interviewee], items: list[RectificationItem],
                     finding: Finding | None, *, tz: str) -> bytes:
    """约谈记录: number, time and place, convening body, chair, people, attendees, recorder, trigger,
    problems, statements of commitment, rectification items, signatures."""
    document = _document("约谈记录", interview.interview_no)
    trigger = interview.trigger or {}
    lines = [
        f"约谈时间：{_when(interview.held_at or interview.scheduled_at, tz)}",
        f"约谈地点：{interview.place or '—'}",
        f"约谈单位：{interview.convening_body or '—'}",
        f"主持人：{interview.chair or '—'}",
        f"被约谈人：{'；'.join(_who(p) for p in people) or '—'}",
        f"参加人员：{'、'.join(interview.attendees or []) or '—'}",
        f"记录人：{interview.recorder or '—'}",
        "约谈事由：" + "；".join(filter(None, [
            f"督查件{'、'.join(trigger.get('findings') or [])}" if trigger.get("findings") else "",
            f"信访件{'、'.join(trigger.get('cases') or [])}" if trigger.get("cases") else "",
            f"三率三色：{trigger.get('colour')}" if trigger.get("colour") else "",
            finding.evidence.get("text", "") if finding else ""])),
        f"指出的问题：{interview.problems or '—'}",
    ]
    for line in lines:
        document.add_paragraph(line)
    document.add_paragraph("表态发言：")
    for p in people:
        document.add_paragraph(f"{_who(p)}：{p.statement or '（未记录）'}")
    document.add_paragraph("整改事项：")
    if not items:
        document.add_paragraph("（无）")
    for i, item in enumerate(items, 1):
        state = {"open": "未完成", "done": "已完成待核验", "verified": "已核验"}.get(item.status, item.status)
        document.add_paragraph(f"{i}. {item.content}（责任人：{item.owner_name}；期限：{_day(item.due_at, tz)}；{state}）")
    document.add_paragraph("被约谈人签字：" + "　" * 12)
    document.add_paragraph("主持人签字：" + "　" * 8 + "记录人签字：" + "　" * 8)
    return _bytes(document)
