"""Cases in handling (交办件), their deadline stages, timeline and dossier."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from assign_svc.models.base import Base
from shared.db import new_id


class Case(Base):
    """A petition handed to a responsible unit (交办件).

    ``due_at``/``deadline_basis`` are the case's headline deadline (the assigned or
    handling stage); each stage keeps its own.  ``row_version`` guards against lost
    updates: a concurrent change makes the second writer fail (HTTP 409).
    """

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    petition_id: Mapped[str] = mapped_column(String(32), unique=True)
    display_no: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    assigned_at: Mapped[datetime]
    due_at: Mapped[datetime]
    deadline_basis: Mapped[str] = mapped_column(String(128))
    row_version: Mapped[int] = mapped_column(Integer, server_default="1")
    mode: Mapped[str] = mapped_column(String(16), server_default="assign")  # assign | forward | divert
    in_clock: Mapped[bool] = mapped_column(Boolean, server_default="1")  # 涉法涉诉 leaves the clock
    statutory_type: Mapped[str | None] = mapped_column(String(16))
    purpose: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))
    flags: Mapped[dict | None] = mapped_column(JSON)  # group_visit, urgent, repeat_of, cross_level, people_count
    petitioner_name: Mapped[str | None] = mapped_column(String(64))
    request_text: Mapped[str | None] = mapped_column(Text)
    registered_at: Mapped[datetime | None]
    leader_id: Mapped[str | None] = mapped_column(ForeignKey("people.id"))
    leader_basis: Mapped[str | None] = mapped_column(String(128))
    routing_rule_id: Mapped[str | None] = mapped_column(String(64))
    routing_version: Mapped[int | None] = mapped_column(Integer)
    directory_version: Mapped[int | None] = mapped_column(Integer)
    route_override_reason: Mapped[str | None] = mapped_column(Text)
    registered_by: Mapped[str | None] = mapped_column(String(64))  # 谁登记
    assigned_by: Mapped[str | None] = mapped_column(String(64))  # 谁交办
    reviewed_by: Mapped[str | None] = mapped_column(String(64))  # 谁审核
    previous_status: Mapped[str | None] = mapped_column(String(16))
    extension: Mapped[dict | None] = mapped_column(JSON)
    opinion: Mapped[dict | None] = mapped_column(JSON)
    service: Mapped[dict | None] = mapped_column(JSON)
    evaluations: Mapped[dict | None] = mapped_column(JSON)
    closure: Mapped[dict | None] = mapped_column(JSON)
    review: Mapped[dict | None] = mapped_column(JSON)
    cessation: Mapped[dict | None] = mapped_column(JSON)
    closed_at: Mapped[datetime | None]
    #: How the closing action ended the matter: ``resolved`` (化解: substantively resolved, confirmed at
    #: the final sign-off) or ``replied`` (办结 only: a reply issued); NULL while open or under review.
    resolution: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime | None]

    __mapper_args__ = {"version_id_col": row_version}


class CaseStage(Base):
    """One deadline-bearing stage of a case (受理告知, 异议, 交办期限, 办理, 复查 …).

    The policy row (one version) and the clock parameters are copied in when the stage
    starts, so later policy edits do not change it unless recomputed on request.
    ``due_at`` is NULL while the stage is paused (the clock stops).
    """

    __tablename__ = "case_stages"
    __table_args__ = (
        Index("ix_case_stages_warn_pending", "warn_at",
              postgresql_where=text("closed_at IS NULL AND warned_at IS NULL AND warn_at IS NOT NULL"),
              sqlite_where=text("closed_at IS NULL AND warned_at IS NULL AND warn_at IS NOT NULL")),
        Index("ix_case_stages_open_case", "case_id", "kind"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[str] = mapped_column(String(32))
    policy_id: Mapped[str] = mapped_column(ForeignKey("deadline_policies.id"))
    policy_code: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    start_day: Mapped[date] = mapped_column(Date)  # local start day: recomputation groups by it
    length: Mapped[int] = mapped_column(Integer)
    length_unit: Mapped[str] = mapped_column(String(16))
    roll_forward: Mapped[bool] = mapped_column(Boolean, default=True)
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    paused_at: Mapped[datetime | None]
    warn_before_days: Mapped[int | None] = mapped_column(Integer)
    warn_fraction: Mapped[float | None]
    due_at: Mapped[datetime | None]
    warn_at: Mapped[datetime | None]
    basis: Mapped[str] = mapped_column(String(256))
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    warned_at: Mapped[datetime | None]


class CaseEvent(Base):
    """The timeline (办理过程): every action with who, when and why."""

    __tablename__ = "case_events"
    __table_args__ = (Index("ix_case_events_case_seq", "case_id", "seq", unique=True),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    seq: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class CaseDocument(Base):
    """A document of the dossier (卷宗): generated .docx files and recorded forms (``content`` is NULL
    until first downloaded when the document was filed for lazy rendering: see ``render``)."""

    __tablename__ = "case_documents"
    __table_args__ = (Index("ix_case_documents_case_type", "case_id", "doc_type"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    doc_type: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str] = mapped_column(String(128))
    media_type: Mapped[str] = mapped_column(String(128))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    #: A document filed without its bytes (the 交办单 at assignment) keeps what renders it: the fields,
    #: issuer and issue date; the bytes are rendered once, at the first download, and kept.
    render: Mapped[dict | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
