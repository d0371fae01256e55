"""notify_svc tables: notices (通知) in recipients' inboxes, their channel deliveries, escalation steps
(催签/升级), notify's copy of the directory's contacts and of the findings' open/closed state."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import make_base, new_id
from shared.outbox import InboxMixin, OutboxMixin

Base = make_base()


class Outbox(OutboxMixin, Base):
    pass


class ProcessedMessage(InboxMixin, Base):
    pass


class Notice(Base):
    """A notice to one recipient.  ``dedupe_key`` = (type, subject, recipient, cycle): one notice each.

    ``status`` ok | error (unknown recipient, template failure, misconfigured channel; ``error`` says
    why); the inbox entry exists either way.  ``next_escalation_at`` is when the next step of the
    escalation chain is due (``escalation_index`` steps done); ``renotify_at`` when an acknowledged
    notice whose finding is still open is re-notified.
    """

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
    unit_id: Mapped[str | None] = mapped_column(String(48))
    status: Mapped[str] = mapped_column(String(16), default="ok", server_default="ok")
    error: Mapped[str | None] = mapped_column(Text)
    ack_due_at: Mapped[datetime | None]
    ack_via: Mapped[str | None] = mapped_column(String(16))
    escalation_index: Mapped[int] = mapped_column(default=0, server_default="0")
    next_escalation_at: Mapped[datetime | None] = mapped_column(index=True)
    renotify_at: Mapped[datetime | None] = mapped_column(index=True)
    renotify_count: Mapped[int] = mapped_column(default=0, server_default="0")
    message_id: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        # the 未签收 list (``GET /notify/api/v1/notices?unacknowledged=true``): only what is still open
        Index("ix_notices_unacknowledged", "created_at", sqlite_where=text("acknowledged_at IS NULL"),
              postgresql_where=text("acknowledged_at IS NULL")),
    )


class Delivery(Base):
    """One channel delivery of a notice (e-mail, SMS, webhook) to one address.

    status pending | sending | sent | failed | gave_up | deferred.  ``sending`` carries a lease
    (``lease_until``): the row is reserved for the worker that claimed it until then.
    ``deferred`` waits for the end of quiet hours (``next_attempt_at``) or, with
    ``next_attempt_at`` empty, was folded into the daily digest by the throttle.
    """

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("notice_id", "channel", "address", name="uq_deliveries_notice_channel"),
                      Index("ix_deliveries_due", "status", "next_attempt_at"))

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    notice_id: Mapped[str] = mapped_column(String(32), ForeignKey("notices.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class NotificationEscalation(Base):
    """One step of a notice's escalation chain (提醒本人 / 上级 / 上一级信访部门 / 再次提醒)."""

    __tablename__ = "notification_escalations"
    __table_args__ = (UniqueConstraint("notice_id", "step_key", name="uq_notification_escalations_step"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    notice_id: Mapped[str] = mapped_column(String(32), ForeignKey("notices.id"), index=True)
    step: Mapped[str] = mapped_column(String(32))
    step_key: Mapped[str] = mapped_column(String(48))
    to_kind: Mapped[str] = mapped_column(String(16))
    to_id: Mapped[str] = mapped_column(String(64))
    to_name: Mapped[str] = mapped_column(String(128))
    escalation_notice_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    escalated_at: Mapped[datetime]


class Contact(Base):
    """notify's copy of the directory's contact channels (from ``directory.changed``).

    For a unit: ``unit_kind`` (petition_dept, bureau …), ``level``, ``region_code``, ``parent_id``;
    for a person: ``unit_id`` and ``post``.  ``channels`` is the channel preference (None = every
    channel with an address).
    """

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
    unit_kind: Mapped[str | None] = mapped_column(String(32))
    level: Mapped[str | None] = mapped_column(String(16))
    region_code: Mapped[str | None] = mapped_column(String(12), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(48))
    post: Mapped[str | None] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(64))
    channels: Mapped[list | None] = mapped_column(JSON)


class Finding(Base):
    """notify's copy of a finding's (督查件) state, from ``finding.changed``: is it still open?"""

    __tablename__ = "findings"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)  # finding id = notices' subject_id
    status: Mapped[str] = mapped_column(String(16))
    is_open: Mapped[bool] = mapped_column(default=True)
    changed_at: Mapped[datetime]
