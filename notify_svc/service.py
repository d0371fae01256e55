"""notify_svc use cases: record a requested notice in the recipient's inbox.  Never commits."""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from notify_svc.models import Contact, Notice
from notify_svc.templates import render
from shared import clock
from shared.contracts import DirectoryChanged, NoticeRequested

log = logging.getLogger(__name__)


def deliver_to_inbox(session: Session, request: NoticeRequested) -> Notice:
    """One notice per dedupe key: a repeated request returns the existing notice."""
    existing = session.scalar(select(Notice).where(Notice.dedupe_key == request.dedupe_key))
    if existing is not None:
        return existing
    title, body = render(request.notice_type, request.context)
    notice = Notice(dedupe_key=request.dedupe_key, notice_type=request.notice_type,
                    recipient_kind=request.recipient_kind, recipient_id=request.recipient_id,
                    recipient_name=request.recipient_name, subject_id=request.subject_id,
                    urgency=request.urgency, title=title, body=body,
                    region_code=str(request.context.get("region_code", "")), created_at=clock.now())
    session.add(notice)
    session.flush()
    log.info("notice %s (%s) to %s:%s", notice.id, notice.notice_type, notice.recipient_kind, notice.recipient_id)
    return notice


def copy_contacts(session: Session, event: DirectoryChanged) -> int:
    """Keep the directory's contact channels; a record applies only if its version is newer than ours."""
    applied = 0
    records = [("unit", u, u.get("id"), dict(u.get("contacts") or {})) for u in event.units] + \
              [("person", p, p.get("unit_id"), p) for p in event.people]
    known = {c.id: c for c in session.scalars(select(Contact).where(
        Contact.id.in_([r[1]["id"] for r in records])))} if records else {}
    for kind, data, unit_id, channels in records:
        row = known.get(data["id"])
        if row is not None and row.version >= event.version:
            continue
        row = row or Contact(id=data["id"])
        row.kind, row.name, row.unit_id = kind, data["name"], unit_id
        row.phone, row.email, row.webhook = channels.get("phone"), channels.get("email"), channels.get("webhook")
        row.active, row.version = bool(data.get("active", True)), event.version
        session.add(row)
        applied += 1
    return applied
