"""notify_svc use cases: record a requested notice in the recipient's inbox.  Never commits."""
from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from notify_svc.models import Notice
from notify_svc.templates import render
from shared import clock
from shared.contracts import NoticeRequested

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
