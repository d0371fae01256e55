"""intake_svc tables: petitions (信访件) and the display-number sequences."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base, new_id
from shared.outbox import InboxMixin, OutboxMixin

Base = make_base()


class Outbox(OutboxMixin, Base):
    pass


class ProcessedMessage(InboxMixin, Base):
    pass


class Petition(Base):
    """A registered petition (信访件).  ``id`` is immutable; ``display_no`` is for people."""

    __tablename__ = "petitions"
    __table_args__ = (UniqueConstraint("system", "county_no", name="uq_petitions_system_county_no"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    display_no: Mapped[str] = mapped_column(String(32), unique=True)
    system: Mapped[str] = mapped_column(String(64))  # the registering county system (登记系统)
    county_no: Mapped[str | None] = mapped_column(String(64))  # the county system's own number
    channel: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(12), index=True)  # 问题属地
    category: Mapped[str] = mapped_column(String(32))
    request_text: Mapped[str] = mapped_column(Text)
    petitioner_name: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime]
    registered_by: Mapped[str] = mapped_column(String(64))


class DisplaySequence(Base):
    """Last display-number sequence used per region and local day (gaps are tolerated)."""

    __tablename__ = "display_sequences"

    region6: Mapped[str] = mapped_column(String(6), primary_key=True)
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)
