"""notify_svc use cases: record a requested notice in the recipient's inbox and plan its channel
deliveries, acknowledge (签收), keep the directory and findings copies.  Never commits.

The inbox write and the delivery rows happen in the consumer's transaction; channel sends never
do (``notify_svc.delivery`` claims the rows afterwards).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from notify_svc.channels import configured
from notify_svc.models import Contact, Delivery, Finding, Notice
from notify_svc.settings import NotifySettings
from notify_svc.templates import TemplateError, render
from shared import clock
from shared.calendar import WorkCalendar
from shared.db import new_id
from shared.regions import subtree_prefix
from shared.contracts import DirectoryChanged, NoticeAcknowledged, NoticeRequested
from shared.contracts.findings import FindingChanged
from shared.runtime import ServiceRuntime

log = logging.getLogger(__name__)

#: Finding states that count as still open (未办结).
OPEN_FINDING_STATES = ("open", "rectifying", "reopened")
#: Internal notice types that never escalate or alert about themselves.
INTERNAL_TYPES = ("digest", "operator_alert", "unacknowledged", "renotify")
THROTTLED = "throttled: folded into the daily digest"


@dataclass
class Request:
    """A notice to record (a ``NoticeRequested`` or one notify raises itself)."""

    notice_type: str
    dedupe_key: str
    recipient_kind: str
    recipient_id: str
    recipient_name: str
    subject_id: str
    urgency: str = "normal"
    context: dict = field(default_factory=dict)

    @classmethod
    def of(cls, r: NoticeRequested) -> "Request":
        return cls(notice_type=r.notice_type, dedupe_key=r.dedupe_key, recipient_kind=r.recipient_kind,
                   recipient_id=r.recipient_id, recipient_name=r.recipient_name, subject_id=r.subject_id,
                   urgency=r.urgency, context=dict(r.context))


def cfg_of(runtime: ServiceRuntime) -> NotifySettings:
    return runtime.extras["notify"]


@lru_cache(maxsize=4)
def _calendar(path: str, unknown_year: str) -> WorkCalendar:
    if path:
        return WorkCalendar.from_file(path, unknown_year=unknown_year)
    return WorkCalendar(unknown_year=unknown_year)


def calendar_of(runtime: ServiceRuntime) -> WorkCalendar:
    """The working-day calendar (工作日历): the operator's override file ``XINFANG_CALENDAR_FILE`` when set,
    and ``XINFANG_CALENDAR_UNKNOWN_YEAR`` for years nobody knows (as assign_svc's deadlines)."""
    override = runtime.extras.get("calendar")
    if override is not None:
        return override
    return _calendar(runtime.settings.calendar_file, runtime.settings.calendar_unknown_year)


def ack_due(cfg: NotifySettings, notice_type: str, created: datetime, tz: str, calendar: WorkCalendar) -> datetime:
    """签收期限 of a notice type: ``ack_hours`` after creation, or ``ack_working_days`` 工作日 later at
    the same local time (法定节假日 and 调休 from ``calendar``)."""
    own = cfg.policy.get("types", {}).get(notice_type) or {}
    source = own if ("ack_hours" in own or "ack_working_days" in own) else cfg.policy.get("type_defaults", {})
    if source.get("ack_hours") is not None:
        return created + timedelta(hours=float(source["ack_hours"]))
    policy = source
    days = int(policy.get("ack_working_days", 1))
    local = created.astimezone(ZoneInfo(tz))
    day = calendar.add_working_days(local.date(), days)
    return datetime.combine(day, local.timetz()).astimezone(created.tzinfo)


def _contact(session: Session, kind: str, recipient_id: str) -> Contact | None:
    row = session.get(Contact, recipient_id)
    return row if row is not None and row.kind == kind and row.active else None


#: ``runtime.extras`` flag set while a worker runs (see ``actors``): the consumer sends inline.
INLINE = "notify_inline_delivery"


def inline_delivery(session: Session, runtime: ServiceRuntime) -> bool:
    """Whether this transaction creates its deliveries claimed, to send them right after its commit:
    in a worker process, in the ``notice.requested`` consumer (no savepoints that could roll back a
    row already queued for sending)."""
    return bool(runtime.extras.get(INLINE)) and bool(session.info.get("notify_consumer"))


def _after_commit_deliver(session: Session, runtime: ServiceRuntime, notice_id: str) -> None:
    """After the commit: send the claimed rows inline (worker) or enqueue the delivery job."""
    actor = runtime.extras.get("deliver_actor")
    if actor is None and not inline_delivery(session, runtime):
        return
    pending = session.info.setdefault("notify_deliver", [])
    if not pending:
        from sqlalchemy import event

        def _send(_session) -> None:
            ids = session.info.pop("notify_deliver", [])
            inline = session.info.pop("notify_inline", [])
            if inline:
                from notify_svc import delivery

                delivery.send_inline(runtime, [delivery.Claimed(delivery.outgoing(cfg_of(runtime), row, notice,
                                                                                  contact, now), row.attempts)
                                               for row, notice, contact, now in inline])
                return
            for nid in ids:
                try:
                    actor.send(nid)
                except Exception:  # the delivery sweep picks the rows up anyway
                    log.exception("could not enqueue delivery of notice %s", nid)

        event.listen(session, "after_commit", _send, once=True)
    pending.append(notice_id)


def record_notice(session: Session, runtime: ServiceRuntime, request: Request) -> Notice:
    """One notice per dedupe key: a repeated request returns the existing notice.

    Bad input (unknown recipient, a template that fails, a misconfigured channel) is recorded on
    the notice (``status=error`` + ``error``) and an operator alert is raised; the inbox entry exists
    regardless.
    """
    existing = session.scalar(select(Notice).where(Notice.dedupe_key == request.dedupe_key))
    if existing is not None:
        return existing
    cfg, now = cfg_of(runtime), clock.now()
    policy = cfg.type_policy(request.notice_type)
    problems: list[str] = []
    try:
        title, body = render(request.notice_type, request.context, cfg.template_dir)
    except TemplateError as exc:
        label = policy.get("label") or request.notice_type
        title = f"{label}（内容生成失败）"
        body = f"{request.recipient_name}：\n\n本通知内容因模板错误未能生成，已通知运维人员处理。编号 {request.dedupe_key}"
        problems.append(f"模板渲染失败：{exc}")
    contact = _contact(session, request.recipient_kind, request.recipient_id)
    if contact is None:
        problems.append(f"收件人不在目录中：{request.recipient_kind} {request.recipient_id}")
    urgency = "urgent" if "urgent" in (request.urgency, policy.get("urgency")) else "normal"
    notice = Notice(dedupe_key=request.dedupe_key, notice_type=request.notice_type,
                    recipient_kind=request.recipient_kind, recipient_id=request.recipient_id,
                    recipient_name=request.recipient_name, subject_id=request.subject_id, urgency=urgency,
                    title=title[:256], body=body, created_at=now,
                    region_code=str(request.context.get("region_code", "") or (contact.region_code if contact else "")
                                    or "")[:12],
                    unit_id=(contact.unit_id if contact and contact.kind == "person" else
                             request.recipient_id if request.recipient_kind == "unit" else None),
                    escalation_index=0, renotify_count=0)
    notice.ack_due_at = ack_due(cfg, request.notice_type, now, runtime.settings.timezone, calendar_of(runtime))
    notice.id = new_id()
    notice.message_id = f"<{notice.id}@xinfang.notify>"
    session.add(notice)
    session.flush()  # the notice row before its deliveries' (no ORM relationship orders them)
    if contact is not None:
        claimed = inline_delivery(session, runtime)
        problems += plan_deliveries(session, cfg, notice, contact, now, runtime.settings.timezone,
                                    claimed=claimed)
        planned = session.info.pop("notify_planned", [])
        if claimed:
            session.info.setdefault("notify_inline", []).extend(
                (row, notice, contact, now) for row in planned if row.status == "sending")
    chain = cfg.escalation_chain
    if not problems and policy.get("escalate", True) and request.notice_type not in INTERNAL_TYPES and chain:
        notice.next_escalation_at = notice.ack_due_at + timedelta(hours=float(chain[0].get("after_hours", 0)))
    if problems:
        mark_error(session, runtime, notice, "；".join(problems))
    _after_commit_deliver(session, runtime, notice.id)
    log.info("notice %s (%s) to %s:%s status=%s", notice.id, notice.notice_type, notice.recipient_kind,
             notice.recipient_id, notice.status)
    return notice


def deliver_to_inbox(session: Session, request: NoticeRequested, runtime: ServiceRuntime | None = None) -> Notice:
    """The consumer of ``notice.requested``."""
    session.info["notify_consumer"] = True
    return record_notice(session, runtime, Request.of(request))


# ---------------------------------------------------------------- channel planning


def in_quiet_hours(cfg: NotifySettings, now: datetime, tz: str) -> datetime | None:
    """The end of the quiet period ``now`` lies in (as an aware UTC instant), or None."""
    if not cfg.quiet_hours:
        return None
    start, end = cfg.quiet_hours
    local = now.astimezone(ZoneInfo(tz))
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    end_day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=ZoneInfo(tz)).astimezone(now.tzinfo)


def _addresses(contact: Contact) -> dict[str, str | None]:
    return {"email": contact.email, "sms": contact.phone, "webhook": contact.webhook}


def plan_deliveries(session: Session, cfg: NotifySettings, notice: Notice, contact: Contact, now: datetime,
                    tz: str, *, claimed: bool = False) -> list[str]:
    """Delivery rows for the recipient's channels; returns problems (a wanted channel not configured).

    ``claimed``: rows due now are created already claimed by this worker (``sending``, attempt 1,
    under a lease) to be sent right after the commit; the new rows are in ``session.info["notify_planned"]``."""
    problems: list[str] = []
    wanted = contact.channels
    addresses = _addresses(contact)
    for channel in ("email", "sms", "webhook"):
        address = addresses[channel]
        if not address or (wanted is not None and channel not in wanted):
            continue
        if not configured(cfg, channel):
            if wanted is not None:  # the recipient asked for it: a misconfigured channel
                problems.append(f"通道未配置：{channel}（收件人要求通过该通道接收）")
            continue
        if channel == "sms" and cfg.sms_urgent_only and notice.urgency != "urgent":
            continue
        row = Delivery(notice_id=notice.id, channel=channel, address=address, status="pending", attempts=0,
                       next_attempt_at=now, created_at=now)
        if channel == "sms":
            sent_last_hour = session.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.channel == "sms", Delivery.address == address, Delivery.created_at > now - timedelta(hours=1),
                or_(Delivery.status != "deferred", Delivery.next_attempt_at.is_not(None))))
            quiet_end = in_quiet_hours(cfg, now, tz) if notice.urgency != "urgent" else None
            if sent_last_hour >= cfg.sms_per_hour:
                row.status, row.next_attempt_at, row.last_error = "deferred", None, THROTTLED
            elif quiet_end is not None:
                row.status, row.next_attempt_at, row.last_error = "deferred", quiet_end, "quiet hours"
        if claimed and row.status == "pending":
            row.status, row.attempts = "sending", 1
            row.lease_until = now + timedelta(seconds=cfg.lease_seconds)
        row.id = new_id()
        session.add(row)
        session.info.setdefault("notify_planned", []).append(row)
    return problems


# ---------------------------------------------------------------- errors and operator alerts


def operator_unit(session: Session, cfg: NotifySettings, region_code: str) -> Contact | None:
    """The petition department (信访部门) of the region (county, then city, then province), else the
    configured operator unit."""
    region = (region_code or "")[:6]
    if len(region) == 6:
        for code in dict.fromkeys((region, region[:4] + "00", region[:2] + "0000")):
            row = session.scalar(select(Contact).where(Contact.kind == "unit", Contact.unit_kind == "petition_dept",
                                                       Contact.region_code == code, Contact.active.is_(True)))
            if row is not None:
                return row
    return session.get(Contact, cfg.operator_unit) if cfg.operator_unit else None


def mark_error(session: Session, runtime: ServiceRuntime, notice: Notice, problem: str) -> None:
    """Record a problem on the notice and alert the operators (once per notice and problem kind)."""
    notice.status = "error"
    notice.error = problem if not notice.error else f"{notice.error}；{problem}"
    log.warning("notice %s: %s", notice.id, problem)
    if notice.notice_type == "operator_alert":
        return
    ops = operator_unit(session, cfg_of(runtime), notice.region_code)
    if ops is None:
        log.error("notice %s: no operator unit to alert", notice.id)
        return
    n = session.scalar(select(func.count()).select_from(Notice).where(
        Notice.dedupe_key.like(f"operator_alert:{notice.id}:%")))
    record_notice(session, runtime, Request(
        notice_type="operator_alert", dedupe_key=f"operator_alert:{notice.id}:{n + 1}", recipient_kind="unit",
        recipient_id=ops.id, recipient_name=ops.name, subject_id=notice.id, urgency="urgent",
        context={"recipient_name": ops.name, "notice_title": notice.title, "notice_type": notice.notice_type,
                 "notice_id": notice.id, "recipient": f"{notice.recipient_name}（{notice.recipient_id}）",
                 "problem": problem.split("：")[0], "detail": problem, "region_code": ops.region_code or ""}))


# ---------------------------------------------------------------- acknowledgement


class NotYours(Exception):
    pass


def notices_in(jurisdiction: str, *, unacknowledged: bool = False, overdue: bool = False, region: str | None = None,
               notice_type: str | None = None, recipient_kind: str | None = None):
    """SELECT of the notices a supervisor of ``jurisdiction`` oversees, oldest first: ``unacknowledged`` the
    未签收 ones, ``overdue`` those past their 签收 deadline; notices without a region (a person's digest, say)
    are everybody's, as in the inbox."""
    stmt = select(Notice)
    mine = subtree_prefix(jurisdiction)
    if mine:
        stmt = stmt.where(or_(Notice.region_code == "", Notice.region_code.startswith(mine)))
    if region:
        stmt = stmt.where(Notice.region_code.startswith(subtree_prefix(region)))
    if unacknowledged or overdue:
        stmt = stmt.where(Notice.acknowledged_at.is_(None))
    if overdue:
        stmt = stmt.where(Notice.ack_due_at < clock.now())
    if notice_type:
        stmt = stmt.where(Notice.notice_type == notice_type)
    if recipient_kind:
        stmt = stmt.where(Notice.recipient_kind == recipient_kind)
    return stmt.order_by(Notice.created_at, Notice.id)


def person_ids(session: Session, principal) -> list[str]:
    """The directory people (人员) the logged-in user is: the person whose id is the token's user id,
    and every person whose directory ``username`` (kept in the contact copy) is the token's username."""
    ids = [principal.user_id] if principal.user_id else []
    if principal.username:
        ids += [pid for pid in session.scalars(select(Contact.id).where(
            Contact.kind == "person", Contact.username == principal.username)) if pid not in ids]
    return ids


def may_act_for(session: Session, principal, notice: Notice) -> bool:
    """The recipient: a unit notice by the token's ``unit_id``; a person notice by the directory person
    id (the token's user id) or the person's directory ``username`` == the token's username."""
    if notice.recipient_kind == "unit":
        return bool(principal.unit_id) and principal.unit_id == notice.recipient_id
    if principal.user_id and principal.user_id == notice.recipient_id:
        return True
    if not principal.username:
        return False
    contact = session.get(Contact, notice.recipient_id)
    return contact is not None and contact.kind == "person" and contact.username == principal.username


def acknowledge(session: Session, runtime: ServiceRuntime, notice: Notice, *, via: str) -> Notice:
    """签收: the first time counts; stops the escalation chain; emits ``notice.acknowledged`` once."""
    if notice.acknowledged_at is not None:
        return notice
    cfg, now = cfg_of(runtime), clock.now()
    notice.read_at = notice.read_at or now
    notice.acknowledged_at, notice.ack_via = now, via
    notice.next_escalation_at = None
    if cfg.type_policy(notice.notice_type).get("renotify") and notice.renotify_count < cfg.renotify_max:
        notice.renotify_at = now + timedelta(hours=cfg.renotify_hours)
    runtime.emit(session, NoticeAcknowledged(
        notice_id=notice.id, dedupe_key=notice.dedupe_key, notice_type=notice.notice_type,
        subject_id=notice.subject_id, recipient_kind=notice.recipient_kind, recipient_id=notice.recipient_id,
        unit_id=notice.unit_id, acknowledged_at=now, via=via, created_at=notice.created_at,
        ack_due_at=notice.ack_due_at))
    return notice


# ---------------------------------------------------------------- copies of other services' data


def copy_contacts(session: Session, event: DirectoryChanged) -> int:
    """Keep the directory's contacts; a record applies only if its version is newer than ours."""
    applied = 0
    records = [("unit", u) for u in event.units] + [("person", p) for p in event.people]
    ids = [r[1]["id"] for r in records] + list(event.removed_units) + list(event.removed_people)
    known = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))} if ids else {}
    for kind, data in records:
        row = known.get(data["id"])
        if row is not None and row.version >= event.version:
            continue
        row = row or Contact(id=data["id"])
        channels = dict(data.get("contacts") or {}) if kind == "unit" else data
        row.kind, row.name = kind, data["name"]
        row.unit_id = data.get("id") if kind == "unit" else data.get("unit_id")
        row.phone, row.email, row.webhook = channels.get("phone"), channels.get("email"), channels.get("webhook")
        row.active, row.version = bool(data.get("active", True)), event.version
        if kind == "unit":
            row.unit_kind, row.level = data.get("kind"), data.get("level")
            row.region_code, row.parent_id = (str(data["region_code"]) if data.get("region_code") else None,
                                              data.get("parent_id") or data.get("parent"))
        else:
            row.post, row.username = data.get("post"), data.get("username")
        prefs = channels.get("notify_channels") if kind == "unit" else data.get("notify_channels")
        row.channels = list(prefs) if prefs is not None else None
        session.add(row)
        applied += 1
    for removed in list(event.removed_units) + list(event.removed_people):
        row = known.get(removed)
        if row is not None and row.version < event.version:
            row.active, row.version = False, event.version
            applied += 1
    return applied


def finding_changed(session: Session, event: FindingChanged) -> None:
    """Keep whether a finding (督查件) is still open; an older message changes nothing."""
    row = session.get(Finding, event.finding_id)
    if row is not None and row.changed_at > event.changed_at:
        return
    row = row or Finding(id=event.finding_id)
    row.status, row.is_open, row.changed_at = event.status, event.status in OPEN_FINDING_STATES, event.changed_at
    session.add(row)

