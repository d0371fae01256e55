"""Escalation of unacknowledged notices (未签收升级), re-notification of acknowledged notices whose
finding stays open (再次提醒), and the daily digest (每日汇总) — periodic sweeps over claimed rows.

The chain comes from the policy (``escalation.chain``): remind the recipient, then the superior
(a person: the head of their unit, or of the parent unit when they are the head; a unit: the head
of its parent unit, else the parent unit), then the petition department (信访部门) of the next
region up.  Each step is a NotificationEscalation row, a notice to whoever is notified and a
``notice.escalated`` event; acknowledgement at any point clears ``next_escalation_at``.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from notify_svc.models import Contact, Delivery, Finding, Notice, NotificationEscalation
from notify_svc.service import INTERNAL_TYPES, THROTTLED, Request, cfg_of, record_notice
from shared import clock
from shared.contracts import NoticeEscalated
from shared.db import is_postgres
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

BATCH = 100
MAX_BATCHES = 20
STEP_LABELS = {"remind": "签收提醒", "superior": "上级督促", "upper_petition_dept": "上一级信访部门督促",
               "renotify": "再次提醒"}


def _fmt(instant: datetime | None, tz: str) -> str:
    return instant.astimezone(ZoneInfo(tz)).strftime("%Y年%m月%d日 %H:%M") if instant else ""


def parent_region(code: str) -> str | None:
    """The region one level up: township → county, county → city, city → province."""
    code = (code or "")[:6] if len(code or "") != 12 else code
    if len(code) == 12:
        return code[:6]
    if len(code) != 6 or code.endswith("0000"):
        return None
    return code[:4] + "00" if not code.endswith("00") else code[:2] + "0000"


def _unit_head(session: Session, unit_id: str | None) -> Contact | None:
    if not unit_id:
        return None
    return session.scalar(select(Contact).where(Contact.kind == "person", Contact.unit_id == unit_id,
                                                Contact.post == "head", Contact.active.is_(True)).order_by(Contact.id))


def superior_of(session: Session, notice: Notice) -> Contact | None:
    """上级: for a person the head of their unit (the parent unit's head when they are the head);
    for a unit the head of its parent unit, else the parent unit itself."""
    me = session.get(Contact, notice.recipient_id)
    if me is None:
        return None
    if notice.recipient_kind == "person":
        head = _unit_head(session, me.unit_id)
        if head is not None and head.id != me.id:
            return head
        unit = session.get(Contact, me.unit_id) if me.unit_id else None
        parent = session.get(Contact, unit.parent_id) if unit is not None and unit.parent_id else None
    else:
        parent = session.get(Contact, me.parent_id) if me.parent_id else None
    if parent is None:
        return None
    return _unit_head(session, parent.id) or parent


def upper_petition_dept(session: Session, notice: Notice) -> Contact | None:
    """The petition department (kind petition_dept) of the region above the recipient's."""
    me = session.get(Contact, notice.recipient_id)
    unit = session.get(Contact, me.unit_id) if me is not None and me.kind == "person" else me
    region = (unit.region_code if unit is not None and unit.region_code else notice.region_code) or ""
    code = parent_region(region)
    while code:
        dept = session.scalar(select(Contact).where(Contact.kind == "unit", Contact.unit_kind == "petition_dept",
                                                    Contact.region_code == code, Contact.active.is_(True)))
        if dept is not None and dept.id != notice.recipient_id:
            return dept
        code = parent_region(code)
    return None


def _target(session: Session, notice: Notice, step: str) -> Contact | None:
    if step == "remind":
        return session.get(Contact, notice.recipient_id)
    if step == "superior":
        return superior_of(session, notice)
    if step == "upper_petition_dept":
        return upper_petition_dept(session, notice)
    raise ValueError(f"unknown escalation step {step!r}")


def _notify_step(session: Session, runtime: ServiceRuntime, notice: Notice, step: str, step_key: str,
                 to: Contact, now: datetime, reason: str) -> NotificationEscalation:
    cfg, tz = cfg_of(runtime), runtime.settings.timezone
    inbox = f"{cfg.base_url.rstrip('/')}/notify/inbox"
    if step == "renotify":
        finding = session.get(Finding, notice.subject_id)
        context = {"recipient_name": to.name, "original_title": notice.title,
                   "acknowledged": _fmt(notice.acknowledged_at, tz), "finding_no": notice.subject_id
                   if finding is None else notice.title.partition("：")[2] or notice.subject_id, "link": inbox,
                   "region_code": notice.region_code}
        notice_type = "renotify"
    else:
        context = {"recipient_name": to.name, "step_label": STEP_LABELS[step], "original_title": notice.title,
                   "original_recipient": notice.recipient_name, "created": _fmt(notice.created_at, tz),
                   "ack_due": _fmt(notice.ack_due_at, tz), "link": inbox, "region_code": notice.region_code}
        notice_type = "unacknowledged"
    sent = record_notice(session, runtime, Request(
        notice_type=notice_type, dedupe_key=f"{notice_type}:{notice.id}:{step_key}", recipient_kind=to.kind,
        recipient_id=to.id, recipient_name=to.name, subject_id=notice.subject_id,
        urgency="normal" if step == "renotify" else "urgent", context=context))
    row = NotificationEscalation(notice_id=notice.id, step=step, step_key=step_key, to_kind=to.kind, to_id=to.id,
                                 to_name=to.name, escalation_notice_id=sent.id, reason=reason, escalated_at=now)
    session.add(row)
    runtime.emit(session, NoticeEscalated(
        notice_id=notice.id, dedupe_key=notice.dedupe_key, notice_type=notice.notice_type,
        subject_id=notice.subject_id, recipient_kind=notice.recipient_kind, recipient_id=notice.recipient_id,
        unit_id=notice.unit_id, step=step, to_kind=to.kind, to_id=to.id, to_name=to.name, escalated_at=now,
        reason=reason))
    return row


def escalate(session: Session, runtime: ServiceRuntime, notice: Notice, now: datetime) -> str | None:
    """Take every escalation step of the notice that is due by ``now`` (a late sweep catches up);
    returns the last step taken (None when nobody could be notified)."""
    chain = cfg_of(runtime).escalation_chain
    taken = None

    def due(index: int) -> datetime:
        return notice.ack_due_at + timedelta(hours=float(chain[index].get("after_hours", 0)))

    while notice.escalation_index < len(chain) and due(notice.escalation_index) <= now:
        step = chain[notice.escalation_index]["step"]
        to = _target(session, notice, step)
        notice.escalation_index += 1
        if to is None:
            log.warning("notice %s: nobody to notify at escalation step %s; skipped", notice.id, step)
            continue
        _notify_step(session, runtime, notice, step, step, to, now,
                     f"签收期限 {_fmt(notice.ack_due_at, runtime.settings.timezone)} 已过仍未签收")
        taken = step
    notice.next_escalation_at = due(notice.escalation_index) if notice.escalation_index < len(chain) else None
    return taken


def renotify(session: Session, runtime: ServiceRuntime, notice: Notice, now: datetime) -> bool:
    """An acknowledged notice whose finding is still open: notify the recipient again."""
    cfg = cfg_of(runtime)
    finding = session.get(Finding, notice.subject_id)
    if finding is None or not finding.is_open:
        notice.renotify_at = None
        return False
    to = session.get(Contact, notice.recipient_id)
    notice.renotify_count += 1
    notice.renotify_at = now + timedelta(hours=cfg.renotify_hours) if notice.renotify_count < cfg.renotify_max \
        else None
    if to is None:
        return False
    _notify_step(session, runtime, notice, "renotify", f"renotify:{notice.renotify_count}", to, now,
                 f"已签收但督查事项仍未办结（状态 {finding.status}）")
    return True


def _claim(session: Session, column, extra, now, limit: int) -> list[Notice]:
    stmt = select(Notice).where(column.is_not(None), column <= now, extra).order_by(column).limit(limit)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def escalation_sweep(runtime: ServiceRuntime) -> dict[str, int]:
    """Escalate every unacknowledged notice whose next step is due; re-notify open findings."""
    counts = {"escalated": 0, "renotified": 0, "failed": 0}
    for column, extra, fn, key in (
            (Notice.next_escalation_at, Notice.acknowledged_at.is_(None), escalate, "escalated"),
            (Notice.renotify_at, Notice.acknowledged_at.is_not(None), renotify, "renotified")):
        for _ in range(MAX_BATCHES):
            now = clock.now()
            with runtime.uow() as session:
                claimed = _claim(session, column, extra, now, BATCH)
                for notice in claimed:
                    try:
                        with session.begin_nested():
                            if fn(session, runtime, notice, now):
                                counts[key] += 1
                    except Exception:
                        log.exception("notice %s: %s failed; skipped", notice.id, key)
                        counts["failed"] += 1
                        setattr(notice, column.key, None)
            if len(claimed) < BATCH:
                break
    return counts


# ---------------------------------------------------------------- daily digest


def digest_sweep(runtime: ServiceRuntime) -> dict[str, int]:
    """每日汇总: once per local day (from the policy's hour), one digest to each recipient with
    unacknowledged notices or throttled messages; dedupe key ``digest:<kind>:<id>:<date>``."""
    cfg, tz = cfg_of(runtime), runtime.settings.timezone
    now = clock.now()
    local = now.astimezone(ZoneInfo(tz))
    if local.hour < cfg.digest_hour:
        return {"digests": 0}
    day = local.date()
    made = 0
    with runtime.uow() as session:
        open_rows = list(session.execute(
            select(Notice).where(Notice.acknowledged_at.is_(None), Notice.notice_type.not_in(INTERNAL_TYPES))
            .order_by(Notice.created_at)).scalars())
        open_findings = {f.id for f in session.scalars(select(Finding).where(Finding.is_open.is_(True)))}
        acked_open = [n for n in session.scalars(
            select(Notice).where(Notice.acknowledged_at.is_not(None), Notice.subject_id.in_(open_findings)))] \
            if open_findings else []
        folded = list(session.execute(
            select(Delivery, Notice).join(Notice, Notice.id == Delivery.notice_id)
            .where(and_(Delivery.status == "deferred", Delivery.next_attempt_at.is_(None),
                        Delivery.last_error == THROTTLED))))
        recipients: dict[tuple[str, str], dict] = {}

        def slot(n: Notice) -> dict:
            return recipients.setdefault((n.recipient_kind, n.recipient_id),
                                         {"name": n.recipient_name, "unacknowledged": [], "open_findings": [],
                                          "folded": [], "folded_rows": [], "region": n.region_code})

        for n in open_rows:
            slot(n)["unacknowledged"].append({"title": n.title, "created": _fmt(n.created_at, tz),
                                              "ack_due": _fmt(n.ack_due_at, tz)})
            if n.subject_id in open_findings:
                slot(n)["open_findings"].append({"title": n.title})
        for n in acked_open:
            slot(n)["open_findings"].append({"title": n.title})
        for delivery, n in folded:
            s = slot(n)
            s["folded"].append({"title": n.title, "channel": {"sms": "短信", "email": "电子邮件"}.get(
                delivery.channel, delivery.channel)})
            s["folded_rows"].append(delivery)
        for (kind, rid), data in recipients.items():
            key = f"digest:{kind}:{rid}:{day.isoformat()}"
            if session.scalar(select(Notice.id).where(Notice.dedupe_key == key)) is not None:
                continue
            record_notice(session, runtime, Request(
                notice_type="digest", dedupe_key=key, recipient_kind=kind, recipient_id=rid,
                recipient_name=data["name"], subject_id=f"digest:{day.isoformat()}",
                context={"recipient_name": data["name"], "local_date": f"{day.year}年{day.month}月{day.day}日",
                         "unacknowledged": data["unacknowledged"], "open_findings": data["open_findings"],
                         "folded": data["folded"], "region_code": data["region"]}))
            for row in data["folded_rows"]:
                row.last_error = f"folded into {key}"
            made += 1
    return {"digests": made}
