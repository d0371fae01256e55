"""supervise_svc tables: its own read model of cases (案件视图), built from events."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, text
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
    #: With ``last_event_at`` the position of the last case action folded into the state, closure, leader
    #: and stages: the action's ``seq`` in the case's timeline (several actions share one instant; NULL for
    #: an action from a producer that sent no seq, or none yet).
    last_event_seq: Mapped[int | None]
    # Added by the checks (not read by the scorecards):
    #: Earliest due end of an undone commitment not yet found overdue (the commitment sweep's index).
    commitments_due_at: Mapped[datetime | None] = mapped_column(index=True)
    #: A repeat/reflow petition whose earlier case has been examined by the reflow check.
    reflow_checked: Mapped[bool] = mapped_column(default=False)
    # The scorecard's deadline stages, copied from ``supervise_case_stages`` by the projection
    # (``service.deadline_columns``) so that one GROUP BY over this table counts 及时受理率,
    # 按期办结率 and 超期未评价 without a join.  One slot per stage kind: the kind's only row
    # (``*_due_at`` NULL while paused or never opened; ``*_closed_at`` NULL while open).
    #: 受理告知 (kind ``acceptance_notice``): due and closed.
    acceptance_due_at: Mapped[datetime | None]
    acceptance_closed_at: Mapped[datetime | None]
    #: 办理 (kind ``handling``, the statutory period incl. an approved extension): due and closed.
    handling_due_at: Mapped[datetime | None]
    handling_closed_at: Mapped[datetime | None]
    #: 交办办理 (kind ``assigned``, the assigned deadline incl. an approved extension): due and closed.
    assigned_due_at: Mapped[datetime | None]
    assigned_closed_at: Mapped[datetime | None]
    #: 满意度评价 window (kind ``evaluation``): due.
    evaluation_due_at: Mapped[datetime | None]
    #: Some scored kind has had more than one row (a reroute, a reopened cycle): the slots above are
    #: all NULL and the scorecard counts this case from its stage rows instead.
    deadline_rows: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        Index("ix_case_views_deadline_rows", "deadline_rows", postgresql_where=text("deadline_rows IS true"),
              sqlite_where=text("deadline_rows IS 1")),
    )


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
    #: When the overdue sweep examined this row past its due (a changed due_at clears it).
    overdue_found_at: Mapped[datetime | None]
    #: A scored row (受理告知, 办理, 交办办理, 评价) of a case counted from its stage rows (the case view's
    #: ``deadline_rows``: some scored kind has several rows), so that the scorecard finds these rows
    #: due in a month through a small partial index instead of scanning every stage.
    deadline_rows: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        # The overdue sweep's partial index: only open, unexamined rows are in it.
        Index("ix_supervise_case_stages_due_pending", "due_at",
              postgresql_where=text("closed_at IS NULL AND overdue_found_at IS NULL AND due_at IS NOT NULL"),
              sqlite_where=text("closed_at IS NULL AND overdue_found_at IS NULL AND due_at IS NOT NULL")),
        Index("ix_supervise_case_stages_deadline_rows_due", "due_at", postgresql_where=text("deadline_rows IS true"),
              sqlite_where=text("deadline_rows IS 1")),
    )


class ScoreFact(Base):
    """What one case contributes to one local month's scorecard (月度计分事实; ``scores.facts``).

    One row per case and local month in which something of the case counts (registered, graded, 办结,
    or a scored deadline due); kept by the projection's session hook, recomputed whole per case.
    ``a_`` = 受理告知, ``h_`` = 办理 / 交办办理: ``_closed`` a stage due in the month was closed, ``_late``
    after its due, ``_open_due`` the earliest due of one still open; ``e_expired``: 超期未评价.
    """

    __tablename__ = "supervise_score_facts"

    petition_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    month: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)  # YYYYMM, local
    prefix: Mapped[str] = mapped_column(String(9))  # the problem location's first 9 digits
    registered: Mapped[bool] = mapped_column(default=False)
    repeat: Mapped[bool] = mapped_column(default=False)
    visit: Mapped[bool] = mapped_column(default=False)
    cross_level_visit: Mapped[bool] = mapped_column(default=False)
    evaluated: Mapped[bool] = mapped_column(default=False)
    satisfied: Mapped[bool] = mapped_column(default=False)
    closed: Mapped[bool] = mapped_column(default=False)
    resolved: Mapped[bool] = mapped_column(default=False)
    judged: Mapped[bool] = mapped_column(default=False)
    substantiated: Mapped[bool] = mapped_column(default=False)
    a_closed: Mapped[bool] = mapped_column(default=False)
    a_late: Mapped[bool] = mapped_column(default=False)
    a_open_due: Mapped[datetime | None]
    h_closed: Mapped[bool] = mapped_column(default=False)
    h_late: Mapped[bool] = mapped_column(default=False)
    h_open_due: Mapped[datetime | None]
    e_expired: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (Index("ix_supervise_score_facts_month", "month"),)


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
    petition_id: Mapped[str | None] = mapped_column(String(32))
    #: Full event payload (contract dump), replayed by a rebuild.
    payload: Mapped[dict | None] = mapped_column(JSON)
    #: Arrival order (ties of ``at`` are replayed in arrival order).
    ordinal: Mapped[int] = mapped_column(default=0, index=True)


class RawEvent(Base):
    """The raw payload of each petition.registered / case.assigned, so a rebuild reads no other service."""

    __tablename__ = "supervise_raw_events"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)  # petition.registered | case.assigned
    petition_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime]


class Counter(Base):
    """Human number sequences (督查件 DC…, 约谈 YT…), one row per prefix."""

    __tablename__ = "supervise_counters"

    key: Mapped[str] = mapped_column(String(48), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Finding(Base):
    """督查件: one hit of a 五必查 rule against a unit (and the case's owning leader).

    ``dedupe_key`` = ``{rule}:{subject_kind}:{subject_id}:{cycle}`` — at most one finding per hit.
    ``cycle_no`` counts reopenings (a rung is climbed at most once per cycle_no).
    """

    __tablename__ = "supervise_findings"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    finding_no: Mapped[str] = mapped_column(String(32), unique=True)
    rule: Mapped[str] = mapped_column(String(24), index=True)
    subject_kind: Mapped[str] = mapped_column(String(8))
    subject_id: Mapped[str] = mapped_column(String(48))
    cycle: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[str | None] = mapped_column(String(32), index=True)
    petition_id: Mapped[str | None] = mapped_column(String(32))
    display_no: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[str] = mapped_column(String(32), index=True)
    unit_name: Mapped[str] = mapped_column(String(128), default="")
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    leader_id: Mapped[str | None] = mapped_column(String(48))
    evidence: Mapped[dict] = mapped_column(JSON, default=dict)
    detected_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    rung: Mapped[str | None] = mapped_column(String(24))
    rung_since: Mapped[datetime | None]
    rectify_due_at: Mapped[datetime | None]
    #: When the ladder sweep looks at it next (NULL: held, or not climbing).
    next_review_at: Mapped[datetime | None] = mapped_column(index=True)
    held: Mapped[bool] = mapped_column(default=False)
    hold_reason: Mapped[str] = mapped_column(Text, default="")
    proof: Mapped[str] = mapped_column(Text, default="")
    cycle_no: Mapped[int] = mapped_column(default=1)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    updated_at: Mapped[datetime]


class FindingEvent(Base):
    """督查件 history: who did what to a finding, when and why."""

    __tablename__ = "supervise_finding_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    finding_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    rung: Mapped[str | None] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict] = mapped_column(JSON, default=dict)


class Escalation(Base):
    """One climb of the ladder (督办阶梯): never the same rung twice in one finding cycle."""

    __tablename__ = "supervise_escalations"
    __table_args__ = (UniqueConstraint("finding_id", "cycle_no", "rung", name="uq_supervise_escalations_rung"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    finding_id: Mapped[str] = mapped_column(String(32), index=True)
    cycle_no: Mapped[int] = mapped_column(default=1)
    rung: Mapped[str] = mapped_column(String(24))
    decided_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    reason: Mapped[str] = mapped_column(Text, default="")


class FindingNotice(Base):
    """A notice requested about a finding and whether its recipient acknowledged it (签收)."""

    __tablename__ = "supervise_finding_notices"

    dedupe_key: Mapped[str] = mapped_column(String(255), primary_key=True)
    finding_id: Mapped[str] = mapped_column(String(32), index=True)
    notice_type: Mapped[str] = mapped_column(String(32))
    rung: Mapped[str | None] = mapped_column(String(24))
    recipient_kind: Mapped[str] = mapped_column(String(8))
    recipient_id: Mapped[str] = mapped_column(String(48))
    recipient_name: Mapped[str] = mapped_column(String(128), default="")
    unit_id: Mapped[str | None] = mapped_column(String(32), index=True)
    requested_at: Mapped[datetime | None]
    notice_id: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None]
    via: Mapped[str | None] = mapped_column(String(8))
    escalations: Mapped[int] = mapped_column(default=0)
    last_escalation: Mapped[dict | None] = mapped_column(JSON)


class LadderPolicy(Base):
    """A version of the ladder policy (督办阶梯规则); the highest version is in force."""

    __tablename__ = "supervise_ladder_policies"

    version: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    policy: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")


class Interview(Base):
    """约谈: number, time and place, convening body, chair, trigger, record, status draft → scheduled → held → closed."""

    __tablename__ = "supervise_interviews"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    interview_no: Mapped[str] = mapped_column(String(32), unique=True)
    finding_id: Mapped[str | None] = mapped_column(String(32), index=True)
    unit_id: Mapped[str] = mapped_column(String(32), index=True)
    unit_name: Mapped[str] = mapped_column(String(128), default="")
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    trigger: Mapped[dict] = mapped_column(JSON, default=dict)  # {findings: [...], cases: [...], colour}
    status: Mapped[str] = mapped_column(String(12), default="draft")
    scheduled_at: Mapped[datetime | None]
    place: Mapped[str] = mapped_column(String(128), default="")
    convening_body: Mapped[str] = mapped_column(String(128), default="")
    chair: Mapped[str] = mapped_column(String(64), default="")
    recorder: Mapped[str] = mapped_column(String(64), default="")
    attendees: Mapped[list] = mapped_column(JSON, default=list)
    problems: Mapped[str] = mapped_column(Text, default="")
    held_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64), default="")


class Interviewee(Base):
    """One person called in (被约谈人), with the statement of commitment (表态发言)."""

    __tablename__ = "supervise_interviewees"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    interview_id: Mapped[str] = mapped_column(String(32), index=True)
    person_id: Mapped[str | None] = mapped_column(String(48))
    name: Mapped[str] = mapped_column(String(64))
    post: Mapped[str] = mapped_column(String(32), default="")
    title: Mapped[str] = mapped_column(String(64), default="")
    unit_id: Mapped[str | None] = mapped_column(String(32))
    unit_name: Mapped[str] = mapped_column(String(128), default="")
    statement: Mapped[str] = mapped_column(Text, default="")


class RectificationItem(Base):
    """整改事项 of an interview: owner, deadline, verification; past due unverified → the finding climbs."""

    __tablename__ = "supervise_rectification_items"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    interview_id: Mapped[str] = mapped_column(String(32), index=True)
    finding_id: Mapped[str | None] = mapped_column(String(32))
    content: Mapped[str] = mapped_column(Text)
    owner_person_id: Mapped[str | None] = mapped_column(String(48))
    owner_name: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | done | verified
    note: Mapped[str] = mapped_column(Text, default="")
    verified_by: Mapped[str | None] = mapped_column(String(64))
    verified_at: Mapped[datetime | None]
    overdue_climbed_at: Mapped[datetime | None]


from supervise_svc import scoring_models  # noqa: E402,F401  (the scorecard tables join this metadata)
from supervise_svc.scores import facts  # noqa: E402,F401  (registers the session hook that keeps ScoreFact current)
