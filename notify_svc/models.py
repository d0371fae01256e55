"""notify_svc tables: notices (通知) in recipients' inboxes."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base, new_id
from shared.outbox import InboxMixin, OutboxMixin

Base = make_base()


class Outbox(OutboxMixin, Base):
    pass


class ProcessedMessage(InboxMixin, Base):
    pass


class Notice(Base):
    """A notice to one recipient.  ``dedupe_key`` = (type, subject, recipient, cycle): one notice each."""

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    dedupe_key: Mapped[str] = mapped_column(String(256), unique=True)
    notice_type: Mapped[str] = mapped_column(String(32))
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str] = mapped_column(String(64), index=True)
    recipient_name: Mapped[str] = mapped_column(String(128))
    subject_id: Mapped[str] = mapped_column(String(64), index=True)
    urgency: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(256))
    body: Mapped[str] = mapped_column(Text)
    region_code: Mapped[str] = mapped_column(String(12), default="")
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]


class Contact(Base):
    """notify's copy of the directory's contact channels (from ``directory.changed``)."""

    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)  # unit id or person id
    kind: Mapped[str] = mapped_column(String(16))  # unit | person
    name: Mapped[str] = mapped_column(String(128))
    unit_id: Mapped[str | None] = mapped_column(String(32), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    email: Mapped[str | None] = mapped_column(String(128))
    webhook: Mapped[str | None] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(default=True)
    version: Mapped[int] = mapped_column(default=0)
