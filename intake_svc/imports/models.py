"""The record of each ledger import (台账导入记录): who imported which file, when, and how it went."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from intake_svc.models import Base
from shared.db import new_id


class LedgerImport(Base):
    """One run of an import.  ``errors`` is the row-level report: ``[{"row", "field", "reason"}]``
    (row as numbered in the sheet, field as the Chinese column name)."""

    __tablename__ = "imports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)  # the same file imported again is recognised
    system: Mapped[str | None] = mapped_column(String(64))  # default 登记系统 for rows that leave it empty
    source: Mapped[str] = mapped_column(String(8))  # api | cli
    actor: Mapped[str] = mapped_column(String(64))
    jurisdiction: Mapped[str] = mapped_column(String(12))
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))  # running | completed | failed
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    existing: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list] = mapped_column(JSON, default=list)
    warnings: Mapped[list] = mapped_column(JSON, default=list)
