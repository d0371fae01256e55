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
