"""assign_svc tables: the directory (units), staff accounts, and cases in handling (交办件)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base, new_id
from shared.outbox import InboxMixin, OutboxMixin

Base = make_base()


class Outbox(OutboxMixin, Base):
    pass


class ProcessedMessage(InboxMixin, Base):
    pass


class Unit(Base):
    """A unit of the directory (单位): petition department, functional bureau, township."""

    __tablename__ = "units"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))  # petition_dept | bureau | township | discipline | political_legal
    level: Mapped[str] = mapped_column(String(16))  # province | city | county | township
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))
    categories: Mapped[list] = mapped_column(JSON, default=list)  # 归口: content categories it is competent for
    directory_version: Mapped[int] = mapped_column(Integer, default=1)


class StaffUser(Base):
    """A staff account (工作人员), kept with the directory's people."""

    __tablename__ = "staff_users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    unit_id: Mapped[str | None] = mapped_column(ForeignKey("units.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Case(Base):
    """A petition handed to a responsible unit (交办件)."""

    __tablename__ = "cases"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    petition_id: Mapped[str] = mapped_column(String(32), unique=True)
    display_no: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[str] = mapped_column(ForeignKey("units.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # 待签收 = awaiting_signature
    assigned_at: Mapped[datetime]
    due_at: Mapped[datetime]
    deadline_basis: Mapped[str] = mapped_column(String(128))
