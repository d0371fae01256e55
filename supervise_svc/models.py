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
    """One petition and, once assigned, its case — as supervision sees it (案件视图).

    Keyed by petition id: petition.registered and case.assigned may arrive in
    either order, and each fills in its own columns.  Every column is derived from
    events (petition.registered, case.assigned, case.action_recorded) so the table can
    be rebuilt from the event history.

    Columns the scorecards (三率三色) read — their meaning is fixed here:

    - ``region_code``: 问题属地 (6 or 12 digits); aggregation is by problem location.
    - ``legal_litigation``: 涉法涉诉 — excluded from the rates.
    - ``channel`` / ``cross_level``: 来访 visits and 越级 visits (越级上访率).
    - ``repeat_of`` / ``reflow``: 重复信访 (the earlier petition id) and 化解后回流.
    - ``accepted_at``: when the unit accepted (受理); the acceptance stage's due is in
      ``supervise_case_stages`` (kind ``acceptance_notice``).
    - ``opinion_outcome``: 支持 / 解释说明 / 不予支持; ``truth``: 属实 / 部分属实 / 不属实 (属实率).
    - ``evaluation_grade``: the petitioner's grade of the handling unit (满意 / 基本满意 / 不满意),
      ``evaluated_at``; ``evaluation_expired``: the window passed with no grade (超期未评价).
    - ``closed_at``: 办结 (final sign-off, 复核 decided, or 终结); ``resolution``: ``resolved``
      (化解) or ``replied`` (办结 only) — 化解率 counts ``resolved``; ``ceased``: 息诉息访书 obtained.
    - ``closure_perfunctory`` / ``closure_failed``: the closure report's checklist failed (敷衍上报).
    - ``commitments``: the opinion's commitments ``[{content, due_date, done, done_at}]``.
    - ``cycle``: bumped each time a closed case is reopened (复查/复核 decided 变更/撤销, reflow).
    """

    __tablename__ = "case_views"

    petition_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_no: Mapped[str] = mapped_column(String(32))
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    category: Mapped[str] = mapped_column(String(32))
    registered_at: Mapped[datetime | None]
    request_text: Mapped[str | None] = mapped_column(Text)
    flags: Mapped[dict] = mapped_column(JSON, default=dict)
    channel: Mapped[str | None] = mapped_column(String(16))
    purpose: Mapped[str | None] = mapped_column(String(16))
    statutory_type: Mapped[str | None] = mapped_column(String(16))
    legal_litigation: Mapped[bool] = mapped_column(default=False)
    cross_level: Mapped[bool] = mapped_column(default=False)
    group_visit: Mapped[bool] = mapped_column(default=False)
    repeat_of: Mapped[str | None] = mapped_column(String(32), index=True)
    reflow: Mapped[bool] = mapped_column(default=False)
    case_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    unit_id: Mapped[str | None] = mapped_column(String(32), index=True)
    unit_name: Mapped[str | None] = mapped_column(String(128))
    leader_id: Mapped[str | None] = mapped_column(String(48))
    leader_name: Mapped[str | None] = mapped_column(String(64))
    mode: Mapped[str | None] = mapped_column(String(16))  # assign | forward | divert
    in_clock: Mapped[bool] = mapped_column(default=True)
    assigned_at: Mapped[datetime | None]
    due_at: Mapped[datetime | None]
    deadline_basis: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # registered | assigned | closed
    case_state: Mapped[str | None] = mapped_column(String(16))  # 办理状态 as assign reports it
    accepted_at: Mapped[datetime | None]
    opinion_at: Mapped[datetime | None]
    opinion_outcome: Mapped[str | None] = mapped_column(String(16))
    truth: Mapped[str | None] = mapped_column(String(8))
    served_at: Mapped[datetime | None]
    evaluation_grade: Mapped[str | None] = mapped_column(String(8))
    evaluated_at: Mapped[datetime | None]
    evaluation_expired: Mapped[bool] = mapped_column(default=False)
    closure_submitted_at: Mapped[datetime | None]
    closure_perfunctory: Mapped[bool] = mapped_column(default=False)
    closure_failed: Mapped[list] = mapped_column(JSON, default=list)
    closed_at: Mapped[datetime | None] = mapped_column(index=True)
    resolution: Mapped[str | None] = mapped_column(String(16))  # resolved (化解) | replied (办结)
    ceased: Mapped[bool] = mapped_column(default=False)
    commitments: Mapped[list] = mapped_column(JSON, default=list)
    cycle: Mapped[int] = mapped_column(default=1)
    last_event_at: Mapped[datetime | None]


class CaseStageView(Base):
    """One deadline stage (期限节点) of a case, as the events report it.

    ``case.action_recorded`` carries the case's open stages after each action; a kind that
    disappears from that list was closed at the action's time.  ``due_at`` is NULL while
    paused (待补充材料).  Kinds: register_route, acceptance_notice, objection, handling,
    assigned, review_request, review_decision, recheck_request, recheck_decision, evaluation.
    ``closed_at`` NULL = still open.  A stage reopened later (a new cycle, a new due) is a new row.
    """

    __tablename__ = "supervise_case_stages"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(32), index=True)
    petition_id: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[str] = mapped_column(String(32), index=True)
    region_code: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(24))
    opened_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    warn_at: Mapped[datetime | None]
    basis: Mapped[str] = mapped_column(Text, default="")
    policy: Mapped[str] = mapped_column(String(64), default="")
    paused: Mapped[bool] = mapped_column(default=False)
    closed_at: Mapped[datetime | None]


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
    population: Mapped[int | None]  # resident population of its region (万人比)
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
