"""Standard documents (文书) generated from templates as printable .docx files, kept in the dossier.

Templates live in ``templates/documents.yaml`` (one Jinja2 template per paragraph, Chinese).
"""
from __future__ import annotations

import io
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import yaml
from jinja2 import Environment, StrictUndefined
from sqlalchemy import select
from sqlalchemy.orm import Session

from assign_svc.domain.dossier import DOCUMENT_TYPES
from assign_svc.domain.workflow import ACCUSATION_PATH, path_of
from assign_svc.models import Case, CaseDocument
from shared.calendar import local_date

TEMPLATES = Path(__file__).parent / "templates" / "documents.yaml"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MODE_LABELS = {"assign": "交由", "forward": "转送", "divert": "转送"}


@lru_cache(maxsize=1)
def _templates() -> dict:
    env = Environment(undefined=StrictUndefined, autoescape=False)
    raw = yaml.safe_load(TEMPLATES.read_text(encoding="utf-8"))
    return {doc: [env.from_string(p) for p in paragraphs] for doc, paragraphs in raw.items()}


#: How a document addressed to a unit names the petitioner of an accusation or a confidential
#: petition: the accuser's identity never reaches the unit (《信访工作条例》第三十二条).
CONFIDENTIAL_PETITIONER = "检举人（信息保密）"


def petitioner_label(case: Case) -> str:
    """The petitioner as named in documents addressed to a unit (交办单): masked for accusations."""
    confidential = path_of(case.statutory_type) == ACCUSATION_PATH or bool((case.flags or {}).get("confidential"))
    return CONFIDENTIAL_PETITIONER if confidential else (case.petitioner_name or "信访人")


def case_fields(case: Case, *, tz: str, unit_name: str = "", leader_name: str = "") -> dict:
    return {"display_no": case.display_no, "petitioner_name": case.petitioner_name or "信访人",
            "petitioner_label": petitioner_label(case), "path": path_of(case.statutory_type),
            "category": case.category, "region_code": case.region_code, "request_text": case.request_text or "",
            "registered_date": _cn_date(local_date(case.registered_at or case.assigned_at, tz)),
            "due_date": _cn_date(local_date(case.due_at, tz)), "deadline_basis": case.deadline_basis,
            "mode": case.mode, "mode_label": MODE_LABELS.get(case.mode, "交由"), "unit_name": unit_name,
            "leader_name": leader_name, "registered_by": case.registered_by or "", "assigned_by": case.assigned_by or ""}


def _cn_date(d) -> str:
    return f"{d.year}年{d.month}月{d.day}日"


def render_paragraphs(doc_type: str, fields: dict) -> list[str]:
    return [text for t in _templates()[doc_type] if (text := t.render(**fields).strip())]


def render_docx(doc_type: str, fields: dict, *, issuer: str, issued_on) -> bytes:
    from docx import Document
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Pt

    document = Document()
    heading = document.add_paragraph()
    heading.alignment = WD_ALIGN_PARAGRAPH.CENTER
    run = heading.add_run(DOCUMENT_TYPES[doc_type])
    run.bold, run.font.size = True, Pt(18)
    number = document.add_paragraph(f"编号：{fields['display_no']}-{doc_type}")
    number.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    for text in render_paragraphs(doc_type, fields):
        document.add_paragraph(text)
    for text in (issuer, _cn_date(issued_on)):
        p = document.add_paragraph(text)
        p.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def generate(session: Session, case: Case, doc_type: str, fields: dict, *, issuer: str, at: datetime, tz: str,
             created_by: str) -> CaseDocument:
    """Render ``doc_type`` for ``case`` and add it to the dossier (a newer one supersedes older ones)."""
    content = render_docx(doc_type, fields, issuer=issuer, issued_on=local_date(at, tz))
    doc = CaseDocument(case_id=case.id, doc_type=doc_type, title=DOCUMENT_TYPES[doc_type],
                       filename=f"{case.display_no}-{DOCUMENT_TYPES[doc_type]}.docx", media_type=DOCX,
                       content=content, created_at=at, created_by=created_by)
    session.add(doc)
    return doc


def file_lazily(session: Session, case: Case, doc_type: str, fields: dict, *, issuer: str, at: datetime, tz: str,
                created_by: str) -> CaseDocument:
    """File ``doc_type`` in the dossier without rendering it: the fields, issuer and issue date are kept
    and the .docx is rendered at the first download (``content_of``), then kept, so every download
    gives the same bytes.  Used for the 交办单 at assignment, where rendering would slow routing."""
    doc = CaseDocument(case_id=case.id, doc_type=doc_type, title=DOCUMENT_TYPES[doc_type],
                       filename=f"{case.display_no}-{DOCUMENT_TYPES[doc_type]}.docx", media_type=DOCX, content=None,
                       render={"fields": fields, "issuer": issuer, "issued_on": local_date(at, tz).isoformat()},
                       created_at=at, created_by=created_by)
    session.add(doc)
    return doc


def content_of(session: Session, doc: CaseDocument) -> bytes:
    """The document's bytes; a lazily filed one is rendered once and stored (the first writer wins, so
    concurrent first downloads still agree).  Call within a write transaction."""
    if doc.content is not None or not doc.render:
        return doc.content or b""
    from datetime import date

    from sqlalchemy import update

    spec = doc.render
    data = render_docx(doc.doc_type, spec["fields"], issuer=spec["issuer"],
                       issued_on=date.fromisoformat(spec["issued_on"]))
    session.execute(update(CaseDocument).where(CaseDocument.id == doc.id, CaseDocument.content.is_(None))
                    .values(content=data).execution_options(synchronize_session=False))
    session.expire(doc, ["content"])
    return session.scalar(select(CaseDocument.content).where(CaseDocument.id == doc.id)) or data


def held(session: Session, case_id: str) -> set[str]:
    return set(session.scalars(select(CaseDocument.doc_type).where(CaseDocument.case_id == case_id)))


def listing(session: Session, case_id: str) -> list[CaseDocument]:
    return list(session.scalars(select(CaseDocument).where(CaseDocument.case_id == case_id)
                                .order_by(CaseDocument.created_at)))
