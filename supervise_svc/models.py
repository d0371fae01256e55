"""supervise_svc tables: its own read model of cases (案件视图), built from events."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base
from shared.outbox import InboxMixin, OutboxMixin

Base = make_base()


class Outbox(OutboxMixin, Base):
    pass


class ProcessedMessage(InboxMixin, Base):
    pass


class CaseView(Base):
    """One petition and, once assigned, its case — as supervision sees it.

    Keyed by petition id: petition.registered and case.assigned may arrive in
    either order, and each fills in its own columns.
    """

    __tablename__ = "case_views"

    petition_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_no: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    category: Mapped[str] = mapped_column(String(32))
    registered_at: Mapped[datetime | None]
    request_text: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[dict] = mapped_column(JSON, default=dict)
    case_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    unit_id: Mapped[str | None] = mapped_column(String(32), index=True)
    unit_name: Mapped[str | None] = mapped_column(String(128))
    assigned_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    deadline_basis: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # registered | assigned


class DirectoryUnit(Base):
    """supervise's copy of assign's directory units (from ``directory.changed``)."""

    __tablename__ = "directory_units"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    level: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(32))
    peer_group: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=0)


class DirectoryPerson(Base):
    """supervise's copy of assign's directory people (leaders to call in, 约谈)."""

    __tablename__ = "directory_people"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    unit_id: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(64))
    post: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(64), default="")
    leader: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=0)


class CaseAction(Base):
    """Every handling action of a case as assign reported it (``case.action_recorded``)."""

    __tablename__ = "case_actions"

    event_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    action: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    stages: Mapped[list] = mapped_column(JSON, default=list)
