"""supervise_svc tables of the scorecards (三率三色) and follow-up calls (回访)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, JSON, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from supervise_svc.models import Base


class ScorecardRun(Base):
    """One computed month (月度排名): when, under which settings, as of which instant.

    ``as_of`` = min(the month's end, the time of computation): an open stage counts as overdue
    when its due lies before ``as_of``.  Recomputing a month replaces its rows and this run's columns.
    """

    __tablename__ = "scorecard_runs"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM, Asia/Shanghai
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    as_of: Mapped[datetime]
    computed_at: Mapped[datetime]
    computed_by: Mapped[str] = mapped_column(String(64), default="")
    settings_version: Mapped[str] = mapped_column(String(32))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    computations: Mapped[int] = mapped_column(default=1)


class ScorecardRow(Base):
    """One unit's card for one month: every numerator and denominator, rates, score, rank, colour.

    ``level``: township | county; ``peer_group``: the county code (townships) or the city code
    (counties) — the group a unit is ranked in; ``peer_size``: ranked units of that group.
    ``counts``: the raw numerators/denominators (keys of ``scores.domain.COUNTS``);
    ``rates``: metric -> value or null (not applicable).
    """

    __tablename__ = "scorecard_rows"
    __table_args__ = (UniqueConstraint("month", "unit_id"), Index("ix_scorecard_rows_unit_month", "unit_id", "month"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7), ForeignKey("scorecard_runs.month", ondelete="CASCADE"), index=True)
    unit_id: Mapped[str] = mapped_column(String(32))
    unit_name: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(String(12))
    peer_group: Mapped[str] = mapped_column(String(12))
    peer_group_name: Mapped[str] = mapped_column(String(64), default="")
    peer_size: Mapped[int]
    population: Mapped[int | None]
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    rates: Mapped[dict] = mapped_column(JSON, default=dict)
    score: Mapped[float | None] = mapped_column(Float)
    rank: Mapped[int | None]
    near_bottom: Mapped[bool] = mapped_column(default=False)
    streak: Mapped[int] = mapped_column(default=0)
    colour: Mapped[str | None] = mapped_column(String(8))
    failed_thresholds: Mapped[list] = mapped_column(JSON, default=list)


class UnitStreak(Base):
    """The latest standing of a unit (连续落后月数): updated when its newest month is computed."""

    __tablename__ = "scorecard_streaks"

    unit_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    streak: Mapped[int] = mapped_column(default=0)
    colour: Mapped[str | None] = mapped_column(String(8))


class FollowUp(Base):
    """One follow-up call or visit (回访) of a closed case.

    ``satisfied``: 满意 / 基本满意 / 不满意, null when the petitioner was not reached;
    ``carried_out``: whether the opinion was actually carried out (落实), null if unknown.
    ``cycle``: the case's cycle at the time of the call (a reopened case is called again).
    """

    __tablename__ = "followups"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    petition_id: Mapped[str] = mapped_column(String(32))
    cycle: Mapped[int] = mapped_column(default=1)
    region_code: Mapped[str] = mapped_column(String(12))
    unit_id: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(16))  # 电话回访 | 上门回访 | 短信回访
    reached: Mapped[bool]
    satisfied: Mapped[str | None] = mapped_column(String(8))
    carried_out: Mapped[bool | None]
    remarks: Mapped[str] = mapped_column(Text, default="")
    caller: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime]
    findings: Mapped[list] = mapped_column(JSON, default=list)  # ids of the findings it opened
