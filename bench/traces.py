"""Read a finished run back from the four service databases: one trace per petition.

Every timestamp comes from the services' shared clock (``shared.clock``), written
in the services' own transactions, so there is no polling skew:

    registered_at (intake, in the POST transaction)
    -> intake outbox row to assign: created_at             [intake handler, rest of the POST]
    -> same row: published_at                              [intake relay, incl. the commit]
    -> assign inbox: processed_at (the actor started)      [broker hop 1]
    -> assign outbox notice.requested (assignment): created_at [assign handler]
    -> same row: published_at                              [assign relay]
    -> notify inbox: processed_at (the actor started)      [broker hop 2]
    -> notices.created_at (交办通知 in the inbox)           [notify handler]
"""
from __future__ import annotations

import json

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

STAGES = ("intake_handler", "intake_relay", "hop_to_assign", "assign_handler", "assign_relay", "hop_to_notify", "notify_handler")
POINTS = ("registered", "intake_emitted", "intake_published", "assign_started", "assign_emitted", "assign_published",
          "notify_started", "noticed")


def _session(url: str) -> tuple:
    engine = create_engine(url)  # plain engine: reads only, no BEGIN IMMEDIATE on SQLite
    return engine, Session(engine)


def count_notices(url: str) -> int:
    from notify_svc.models import Notice

    engine, session = _session(url)
    try:
        return session.scalar(select(func.count()).select_from(Notice).where(Notice.notice_type == "assignment"))
    finally:
        session.close()
        engine.dispose()


def _payload(body: str) -> dict:
    return json.loads(body)["payload"]


def collect(urls: dict[str, str]) -> dict[str, dict]:
    """petition id -> {point: datetime, "notices": n} for every petition in intake's database."""
    from assign_svc.models import Case, Outbox as AssignOutbox, ProcessedMessage as AssignInbox
    from intake_svc.models import Outbox as IntakeOutbox, Petition
    from notify_svc.models import Notice, ProcessedMessage as NotifyInbox

    opened = {svc: _session(urls[svc]) for svc in ("intake", "assign", "notify")}
    try:
        s = {svc: pair[1] for svc, pair in opened.items()}
        traces = {pid: {"registered": at, "notices": 0}
                  for pid, at in s["intake"].execute(select(Petition.id, Petition.registered_at))}
        to_assign = {}  # intake outbox id -> petition id
        for oid, body, created, published in s["intake"].execute(
                select(IntakeOutbox.id, IntakeOutbox.body, IntakeOutbox.created_at, IntakeOutbox.published_at)
                .where(IntakeOutbox.queue_name == "assign")):
            pid = _payload(body)["petition_id"]
            to_assign[oid] = pid
            if pid in traces:
                traces[pid].update(intake_emitted=created, intake_published=published)
        for mid, at in s["assign"].execute(select(AssignInbox.message_id, AssignInbox.processed_at)):
            if mid in to_assign and to_assign[mid] in traces:
                traces[to_assign[mid]]["assign_started"] = at
        case_petition = dict(s["assign"].execute(select(Case.id, Case.petition_id)).all())
        to_notify = {}  # assign outbox id -> petition id
        for oid, body, created, published in s["assign"].execute(
                select(AssignOutbox.id, AssignOutbox.body, AssignOutbox.created_at, AssignOutbox.published_at)
                .where(AssignOutbox.message_type == "notice.requested")):
            payload = _payload(body)
            if payload.get("notice_type") != "assignment":
                continue  # e.g. 包案通知 (ownership) to the owning leader: not on the measured path
            pid = case_petition.get(payload["subject_id"])
            if pid in traces:
                to_notify[oid] = pid
                traces[pid].update(assign_emitted=created, assign_published=published)
        for mid, at in s["notify"].execute(select(NotifyInbox.message_id, NotifyInbox.processed_at)):
            if mid in to_notify:
                traces[to_notify[mid]]["notify_started"] = at
        for subject, created in s["notify"].execute(select(Notice.subject_id, Notice.created_at)
                                                    .where(Notice.notice_type == "assignment")):
            pid = case_petition.get(subject)
            if pid in traces:
                traces[pid]["notices"] += 1
                traces[pid]["noticed"] = created
        return traces
    finally:
        for engine, session in opened.values():
            session.close()
            engine.dispose()


def seconds(trace: dict, start: str, end: str) -> float | None:
    if trace.get(start) is None or trace.get(end) is None:
        return None
    return (trace[end] - trace[start]).total_seconds()


def stage_seconds(trace: dict) -> dict[str, float | None]:
    return {name: seconds(trace, POINTS[k], POINTS[k + 1]) for k, name in enumerate(STAGES)}


def outbox_messages(urls: dict[str, str], since) -> dict[str, int]:
    """Outbox rows (= broker messages) each service wrote from ``since`` on."""
    from sqlalchemy import text

    counts = {}
    for svc, url in urls.items():
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT created_at FROM outbox")).scalars().all()
        finally:
            engine.dispose()
        counts[svc] = sum(1 for at in rows if _aware(at) >= since)
    return counts


def _aware(value):
    """SQLite returns naive UTC (or a string) from a raw query; PostgreSQL an aware datetime."""
    from datetime import datetime, timezone

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
