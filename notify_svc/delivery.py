"""The delivery sweep (投递): claim due Delivery rows, send them outside any transaction, record
the result; retries with exponential backoff, gives up after the configured limit.

Prompt delivery: in a worker process the ``notice.requested`` consumer creates the delivery rows
already claimed (``sending``, attempt 1, under a lease) in its own transaction and sends them in the
same thread right after the commit (``send_inline``), over reused SMTP connections
(``channels.SmtpPool``).  Elsewhere (tests, web processes) the rows are created ``pending`` and the
``notify.deliver`` job is enqueued after the commit; the minute sweep catches anything left over.

Exactly-once as far as it can be had:
* a row is claimed in its own short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite
  serialises writers) and marked ``sending`` with a lease (``lease_until``) before anything is
  sent, so a redelivered job, a second worker or the periodic sweep skip it while it is leased,
  and skip it for good once it is ``sent``;
* the result is recorded only by the claimant (status still ``sending`` and ``attempts`` equal to
  the claimed attempt), so a late worker cannot overwrite a newer attempt;
* every e-mail of a notice carries the same ``Message-ID`` and every SMS / webhook request the
  delivery id (``Idempotency-Key`` / ``X-Xinfang-Delivery``), so receivers can drop a duplicate.

Residual at-least-once window (documented, not closable without the receiver's help): a worker
killed after the SMTP server / gateway accepted the message but before the ``sent`` status was
committed leaves the row ``sending``; when its lease expires it is claimed again and sent a second
time (with the same Message-ID / idempotency key).  A crash before the send (including a worker
killed between the consumer's commit and its inline send: the row born claimed goes out once, after
its lease), or a redelivery of the job or of ``notice.requested`` at any other point, does not send
twice.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from notify_svc import channels, links
from notify_svc.models import Contact, Delivery, Notice
from notify_svc.service import cfg_of, in_quiet_hours, mark_error
from shared import clock
from shared.db import is_postgres
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

#: Rows claimed per transaction.
BATCH = 50
#: Upper bound of batches per sweep run.
MAX_BATCHES = 40
DUE_STATES = ("pending", "failed", "deferred")


@dataclass(frozen=True)
class Claimed:
    out: channels.Outgoing
    attempt: int


def _due(now):
    return or_(and_(Delivery.status.in_(DUE_STATES), Delivery.next_attempt_at.is_not(None),
                    Delivery.next_attempt_at <= now),
               and_(Delivery.status == "sending", Delivery.lease_until < now))


def outgoing(cfg, row: Delivery, notice: Notice, contact: Contact | None, now) -> channels.Outgoing:
    return channels.Outgoing(
        delivery_id=row.id, notice_id=notice.id, channel=row.channel, address=row.address,
        recipient_name=contact.name if contact else notice.recipient_name, notice_type=notice.notice_type,
        urgency=notice.urgency, title=notice.title, body=notice.body,
        message_id=notice.message_id or f"<{notice.id}@xinfang.notify>",
        ack_link=links.ack_link(cfg, notice.id, now),
        inbox_link=f"{cfg.base_url.rstrip('/')}/notify/inbox", created_at=notice.created_at)


def claim(session: Session, runtime: ServiceRuntime, *, notice_id: str | None = None,
          limit: int = BATCH) -> list[Claimed]:
    """Mark due rows ``sending`` under a lease and return what to send (caller commits).

    One SELECT reads the rows with their notices and recipients (locking only the delivery rows,
    skipping those another worker holds); the status changes go out as one batched UPDATE."""
    cfg, now = cfg_of(runtime), clock.now()
    stmt = (select(Delivery, Notice, Contact).join(Notice, Notice.id == Delivery.notice_id)
            .outerjoin(Contact, Contact.id == Notice.recipient_id)
            .where(_due(now)).order_by(Delivery.next_attempt_at).limit(limit))
    if notice_id is not None:
        stmt = stmt.where(Delivery.notice_id == notice_id)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True, of=Delivery)
    claimed: list[Claimed] = []
    for row, notice, contact in session.execute(stmt):
        row.status, row.attempts = "sending", row.attempts + 1
        row.lease_until = now + timedelta(seconds=cfg.lease_seconds)
        claimed.append(Claimed(outgoing(cfg, row, notice, contact, now), row.attempts))
    return claimed


def record(session: Session, runtime: ServiceRuntime, claimed: Claimed, error: channels.ChannelError | None) -> str:
    """Record one send's outcome; returns the new status ('stale' if the claim was lost).

    Only the claimant records: the row must still be ``sending`` with the claimed attempt number.
    A success is one conditional UPDATE (atomic: no read, no lock held across statements)."""
    cfg, now = cfg_of(runtime), clock.now()
    if error is None:
        done = session.execute(
            update(Delivery).where(Delivery.id == claimed.out.delivery_id, Delivery.status == "sending",
                                   Delivery.attempts == claimed.attempt)
            .values(status="sent", sent_at=now, next_attempt_at=None, last_error=None, lease_until=None)
            .execution_options(synchronize_session=False))
        if done.rowcount == 1:
            return "sent"
        return _stale(claimed)
    stmt = select(Delivery).where(Delivery.id == claimed.out.delivery_id)
    if is_postgres(session):
        stmt = stmt.with_for_update()
    row = session.scalar(stmt)
    if row is None or row.status != "sending" or row.attempts != claimed.attempt:
        return _stale(claimed)
    row.lease_until = None
    row.last_error = str(error)[:2000]
    if not error.transient or row.attempts >= cfg.retry_limit:
        row.status, row.next_attempt_at = "gave_up", None
        reason = "不可重试的错误（配置或被拒收）" if not error.transient else f"重试 {row.attempts} 次后放弃"
        notice = session.get(Notice, row.notice_id)
        mark_error(session, runtime, notice, f"{row.channel} 投递失败（{reason}）：{row.address}：{error}")
        return "gave_up"
    delay = timedelta(seconds=cfg.retry_backoff_seconds * (2 ** (row.attempts - 1)))
    row.status, row.next_attempt_at = "failed", now + delay
    if row.channel == "sms":
        notice = session.get(Notice, row.notice_id)
        quiet_end = in_quiet_hours(cfg, row.next_attempt_at, runtime.settings.timezone)
        if notice.urgency != "urgent" and quiet_end is not None:
            row.next_attempt_at = quiet_end
    return "failed"


def _stale(claimed: Claimed) -> str:
    log.warning("delivery %s: result of attempt %s arrived after its lease was taken over",
                claimed.out.delivery_id, claimed.attempt)
    return "stale"


def send_claimed(runtime: ServiceRuntime, claimed: list[Claimed]) -> dict[str, int]:
    """Send each claimed delivery and record its outcome at once, in its own short transaction (so a
    crash re-sends at most the one message in flight)."""
    counts: dict[str, int] = {}
    cfg = cfg_of(runtime)
    for item in claimed:
        try:
            channels.send(cfg, item.out)
            error = None
        except channels.ChannelError as exc:
            error = exc
        except Exception as exc:  # a bug in a sender must not leave the row leased forever
            log.exception("delivery %s: unexpected error", item.out.delivery_id)
            error = channels.ChannelError(f"{exc.__class__.__name__}: {exc}")
        with runtime.uow() as session:
            status = record(session, runtime, item, error)
        counts[status] = counts.get(status, 0) + 1
    return counts


def deliver(runtime: ServiceRuntime, notice_id: str | None = None) -> dict[str, int]:
    """Claim and send due deliveries (of one notice, or all) in batches; the delivery job and sweep."""
    totals: dict[str, int] = {}
    for _ in range(MAX_BATCHES):
        with runtime.uow() as session:
            batch = claim(session, runtime, notice_id=notice_id)
        for key, value in send_claimed(runtime, batch).items():
            totals[key] = totals.get(key, 0) + value
        if len(batch) < BATCH:
            break
    return totals


def send_inline(runtime: ServiceRuntime, claimed: list[Claimed]) -> None:
    """In a worker, right after the consumer committed the inbox entry: send the deliveries it created
    already claimed (``sending`` under a lease).  Never raises: a row not recorded here is claimed again
    by the delivery sweep once its lease ends."""
    try:
        send_claimed(runtime, claimed)
    except Exception:
        log.exception("inline delivery of %s failed; the sweep retries after the lease",
                      [c.out.delivery_id for c in claimed])


def retry(session: Session, delivery: Delivery) -> Delivery:
    """An operator's retry of a failed or given-up delivery: due now, attempts counted afresh."""
    delivery.status, delivery.attempts = "pending", 0
    delivery.next_attempt_at, delivery.lease_until = clock.now(), None
    return delivery
