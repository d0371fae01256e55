"""督办阶梯 (escalation ladder): entering a rung, its notices, the policy versions, the time sweep,
and the acknowledgements (签收) of the notices about findings.

Recipients of a rung's notices: the head (post ``head``) of the finding's unit (the unit's inbox
if it has none), the owning leader (包案领导, the case's ``leader_id``), the supervisors = the
petition department (kind ``petition_dept``) of the finding's county (else its city), and for
问责 also the discipline inspection unit (kind ``discipline``) of the county or city.
"""
from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import clock
from shared.contracts import FINDING_RULES, LADDER_RUNGS, NoticeAcknowledged, NoticeEscalated, NoticeRequested
from shared.db import is_postgres
from shared.runtime import ServiceRuntime
from supervise_svc import findings as findings_mod
from supervise_svc.domain import ladder as rules
from supervise_svc.domain.lifecycle import UNRECTIFIED
from supervise_svc.models import (DirectoryPerson, DirectoryUnit, Escalation, Finding, FindingNotice, LadderPolicy)

log = logging.getLogger(__name__)

POLICY_FILE = Path(__file__).parent / "data" / "ladder.yaml"
#: Findings claimed per transaction by the ladder sweep.
LADDER_BATCH = 200
#: Upper bound of batches per sweep run (the next run continues).
LADDER_MAX_BATCHES = 50


@lru_cache(maxsize=1)
def default_policy() -> dict:
    return yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8"))


def current_policy_row(session: Session) -> LadderPolicy | None:
    return session.scalar(select(LadderPolicy).order_by(LadderPolicy.version.desc()).limit(1))


def current_policy(session: Session) -> dict:
    """The policy in force: the newest stored version, else the shipped ``data/ladder.yaml``
    (read once per transaction)."""
    if "ladder_policy" not in session.info:
        row = current_policy_row(session)
        session.info["ladder_policy"] = row.policy if row is not None else default_policy()
    return session.info["ladder_policy"]


def store_policy(session: Session, policy: dict, *, by: str, note: str = "") -> LadderPolicy:
    """Store an edited policy as a new version (findings.BadInput with field errors when invalid)."""
    errors = rules.validate_policy(policy)
    if errors:
        raise findings_mod.BadInput("督办阶梯规则有误", errors)
    latest = session.scalar(select(func.max(LadderPolicy.version))) or 0
    row = LadderPolicy(version=latest + 1, policy=policy, created_at=clock.now(), created_by=by, note=note)
    session.add(row)
    session.flush()
    session.info["ladder_policy"] = policy
    return row


def review_at(session: Session, finding: Finding, since: datetime) -> datetime | None:
    if finding.held or finding.status not in UNRECTIFIED:
        return None
    return rules.review_due(current_policy(session), finding.rule, finding.rung, since)


# ---------------------------------------------------------------- entering a rung


def enter_rung(session: Session, runtime: ServiceRuntime, finding: Finding, rung: str, *, decided_by: str,
               at: datetime, reason: str, emit: bool = True, fresh: bool = False) -> Escalation | None:
    """Put ``finding`` on ``rung``: Escalation row, history, notices; None if it was on it this cycle already.
    ``fresh``: the finding was just opened (it has no escalation yet)."""
    if not fresh:
        exists = session.scalar(select(Escalation.id).where(Escalation.finding_id == finding.id,
                                                            Escalation.cycle_no == finding.cycle_no,
                                                            Escalation.rung == rung))
        if exists is not None:
            return None
    escalation = Escalation(finding_id=finding.id, cycle_no=finding.cycle_no, rung=rung, decided_by=decided_by,
                            at=at, reason=reason)
    session.add(escalation)
    previous = finding.rung
    finding.rung, finding.rung_since, finding.updated_at = rung, at, at
    policy = current_policy(session)
    finding.rectify_due_at = rules.rectify_due(policy, finding.rule, at)
    finding.next_review_at = review_at(session, finding, at)
    findings_mod.record(session, finding, action="climb" if previous else "enter_rung", actor=decided_by, at=at,
                        reason=reason, from_status=finding.status, data={"from_rung": previous, "to_rung": rung})
    request_rung_notices(session, runtime, finding, rung, reason=reason)
    if emit:
        findings_mod.emit_changed(session, runtime, finding, at=at, reason=f"rung {rung}")
    if not fresh:
        session.flush()
    return escalation


def _cached(session: Session, key: tuple, load):
    """A directory lookup remembered for the rest of the transaction (a sweep asks the same ones often)."""
    cache = session.info.setdefault("directory_cache", {})
    if key not in cache:
        cache[key] = load()
    return cache[key]


def _person(session: Session, unit_id: str, post: str) -> DirectoryPerson | None:
    return _cached(session, ("person", unit_id, post), lambda: session.scalar(select(DirectoryPerson).where(DirectoryPerson.unit_id == unit_id,
                                                        DirectoryPerson.post == post,
                                                        DirectoryPerson.active.is_(True)).limit(1)))


def unit_of_kind(session: Session, kind: str, region_code: str) -> DirectoryUnit | None:
    """The unit of ``kind`` of the county of ``region_code``, else of its city, else of its province."""
    county = region_code[:6]

    def load():
        for region in (county, county[:4] + "00", county[:2] + "0000"):
            unit = session.scalar(select(DirectoryUnit).where(DirectoryUnit.kind == kind,
                                                              DirectoryUnit.region_code == region,
                                                              DirectoryUnit.active.is_(True)).limit(1))
            if unit is not None:
                return unit
        return None

    return _cached(session, ("unit_of_kind", kind, county), load)


def recipients(session: Session, finding: Finding, rung: str,
               lookup: "DirectoryLookup | None" = None) -> list[tuple[str, str, str, str | None]]:
    """[(kind, id, name, unit_id)] of the notices of ``rung`` — see the module docstring.  ``lookup``: the
    directory prefetched for a batch of findings (default: per-transaction cached queries)."""
    out: list[tuple[str, str, str, str | None]] = []
    if lookup is not None:
        head = lookup.head(finding.unit_id)
        leader = lookup.person(finding.leader_id) if finding.leader_id else None
        dept = lookup.unit_of_kind("petition_dept", finding.region_code)
    else:
        head = _person(session, finding.unit_id, "head")
        leader = session.get(DirectoryPerson, finding.leader_id) if finding.leader_id else None
        dept = unit_of_kind(session, "petition_dept", finding.region_code)
    out.append(("person", head.id, head.name, head.unit_id) if head else
               ("unit", finding.unit_id, finding.unit_name, finding.unit_id))
    if finding.leader_id:
        out.append(("person", finding.leader_id, leader.name if leader else finding.leader_id,
                    leader.unit_id if leader else None))
    if dept is not None:
        out.append(("unit", dept.id, dept.name, dept.id))
    if rung == "accountability":
        discipline = (lookup.unit_of_kind("discipline", finding.region_code) if lookup is not None
                      else unit_of_kind(session, "discipline", finding.region_code))
        if discipline is not None:
            out.append(("unit", discipline.id, discipline.name, discipline.id))
    seen, unique = set(), []
    for r in out:
        if (r[0], r[1]) not in seen:
            seen.add((r[0], r[1]))
            unique.append(r)
    return unique


def _regions_up(region_code: str) -> tuple[str, str, str]:
    county = region_code[:6]
    return county, county[:4] + "00", county[:2] + "0000"


class DirectoryLookup:
    """The directory facts the notices of a batch of new findings need, read with three queries
    (heads of the units, the owning leaders, the petition departments / discipline units of their
    counties, cities and provinces) instead of a few per finding.  Same answers as the per-row lookups
    (the first active match by id)."""

    def __init__(self, session: Session, *, unit_ids, leader_ids, region_codes) -> None:
        self._heads: dict[str, DirectoryPerson] = {}
        unit_ids = sorted(set(unit_ids))
        if unit_ids:
            for p in session.scalars(select(DirectoryPerson).where(
                    DirectoryPerson.unit_id.in_(unit_ids), DirectoryPerson.post == "head",
                    DirectoryPerson.active.is_(True)).order_by(DirectoryPerson.id)):
                self._heads.setdefault(p.unit_id, p)
        leader_ids = sorted({i for i in leader_ids if i})
        self._people = {p.id: p for p in session.scalars(select(DirectoryPerson).where(
            DirectoryPerson.id.in_(leader_ids)))} if leader_ids else {}
        regions = sorted({r for code in region_codes for r in _regions_up(code)})
        self._units: dict[tuple[str, str], DirectoryUnit] = {}
        if regions:
            for u in session.scalars(select(DirectoryUnit).where(
                    DirectoryUnit.kind.in_(("petition_dept", "discipline")), DirectoryUnit.region_code.in_(regions),
                    DirectoryUnit.active.is_(True)).order_by(DirectoryUnit.id)):
                self._units.setdefault((u.kind, u.region_code), u)

    def head(self, unit_id: str) -> DirectoryPerson | None:
        return self._heads.get(unit_id)

    def person(self, person_id: str) -> DirectoryPerson | None:
        return self._people.get(person_id)

    def unit_of_kind(self, kind: str, region_code: str) -> DirectoryUnit | None:
        for region in _regions_up(region_code):
            unit = self._units.get((kind, region))
            if unit is not None:
                return unit
        return None


def finding_context(finding: Finding, *, recipient_name: str, reason: str = "") -> dict:
    """The context every notice about a finding carries (the notify templates rely on these keys)."""
    return {"recipient_name": recipient_name, "unit_name": finding.unit_name, "region_code": finding.region_code,
            "finding_no": finding.finding_no, "rule_label": FINDING_RULES.get(finding.rule, finding.rule),
            "rung_label": LADDER_RUNGS.get(finding.rung or "", ""), "reason": reason,
            "evidence_text": (finding.evidence or {}).get("text") or FINDING_RULES.get(finding.rule, ""),
            "display_no": finding.display_no or "", "detected_at": finding.detected_at.isoformat(),
            "rectify_due_at": finding.rectify_due_at.isoformat() if finding.rectify_due_at else "",
            "link": f"/supervise/api/v1/findings/{finding.id}"}


def notice_request(finding: Finding, *, notice_type: str, recipient: tuple[str, str, str, str | None],
                   cycle: str, context: dict, urgent: bool = False,
                   requested_at: datetime) -> tuple[NoticeRequested, dict]:
    """The notice.requested payload about ``finding`` and its supervise_finding_notices row
    (dedupe_key ``type:finding:recipient_kind:recipient_id:cycle``)."""
    kind, rid, name, unit_id = recipient
    key = f"{notice_type}:{finding.id}:{kind}:{rid}:{cycle}"
    payload = NoticeRequested(notice_type=notice_type, dedupe_key=key, recipient_kind=kind, recipient_id=rid,
                              recipient_name=name, subject_id=finding.id, urgency="urgent" if urgent else "normal",
                              context=context)
    row = dict(dedupe_key=key, finding_id=finding.id, notice_type=notice_type, rung=finding.rung,
               recipient_kind=kind, recipient_id=rid, recipient_name=name, unit_id=unit_id,
               requested_at=requested_at, notice_id=None, acknowledged_at=None, via=None, escalations=0,
               last_escalation=None)
    return payload, row


def request_notice(session: Session, runtime: ServiceRuntime, finding: Finding, *, notice_type: str,
                   recipient: tuple[str, str, str, str | None], cycle: str, context: dict,
                   urgent: bool = False) -> None:
    """One notice.requested about ``finding`` (dedupe_key type:finding:recipient_kind:recipient_id:cycle),
    remembered in supervise_finding_notices to follow its acknowledgement."""
    kind, rid = recipient[0], recipient[1]
    fresh = finding.id in session.info.get("fresh_findings", ())  # just opened: it has no notices yet
    if not fresh and session.get(FindingNotice, f"{notice_type}:{finding.id}:{kind}:{rid}:{cycle}") is not None:
        return
    payload, row = notice_request(finding, notice_type=notice_type, recipient=recipient, cycle=cycle,
                                  context=context, urgent=urgent, requested_at=clock.now())
    runtime.emit(session, payload)
    session.add(FindingNotice(**row))


def rung_notices(finding: Finding, rung: str, targets: list[tuple[str, str, str, str | None]], *,
                 reason: str) -> list[dict]:
    """The keyword arguments of each notice of ``rung`` to ``targets`` (see ``request_rung_notices``)."""
    if rung == "interview":
        targets = [t for t in targets if t[0] == "unit"]
    urgent = rules.rank(rung) >= rules.rank("warning")
    out = []
    for recipient in targets:
        context = finding_context(finding, recipient_name=recipient[2], reason=reason)
        if rung == "interview":
            context.update(interview_no="", scheduled_at="", place="", convening_body="", chair="")
        out.append(dict(notice_type=rung, recipient=recipient,
                        cycle=f"{rung}" if finding.cycle_no == 1 else f"{rung}.{finding.cycle_no}",
                        context=context, urgent=urgent))
    return out


def overdue_notice(finding: Finding) -> dict:
    """The keyword arguments of the 超期提醒 to the unit of an overdue finding."""
    recipient = ("unit", finding.unit_id, finding.unit_name, finding.unit_id)
    return dict(notice_type="overdue", recipient=recipient, cycle="overdue", urgent=True,
                context=finding_context(finding, recipient_name=finding.unit_name,
                                        reason=(finding.evidence or {}).get("text", "")))


def request_rung_notices(session: Session, runtime: ServiceRuntime, finding: Finding, rung: str, *,
                         reason: str) -> None:
    """The rung's notices (type = the rung code).  At 约谈 only the supervisors are told now: the people
    interviewed get the ``interview`` notice when the interview is scheduled."""
    for kwargs in rung_notices(finding, rung, recipients(session, finding, rung), reason=reason):
        request_notice(session, runtime, finding, **kwargs)


def request_overdue_notice(session: Session, runtime: ServiceRuntime, finding: Finding) -> None:
    """超期提醒 to the unit of an overdue finding (assign_svc already sent the 临期提醒 before the due)."""
    request_notice(session, runtime, finding, **overdue_notice(finding))


# ---------------------------------------------------------------- the time sweep


def _claim(session: Session, now: datetime, limit: int) -> list[Finding]:
    stmt = (select(Finding).where(Finding.next_review_at.is_not(None), Finding.next_review_at <= now,
                                  Finding.held.is_(False), Finding.status.in_(sorted(UNRECTIFIED)))
            .order_by(Finding.next_review_at).limit(limit))
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def climb_by_time(session: Session, runtime: ServiceRuntime, finding: Finding, now: datetime) -> bool:
    target = rules.next_rung(finding.rung)
    days = rules.rule_policy(current_policy(session), finding.rule).get("climb_after_days", 5)
    if target is None:
        finding.next_review_at = None
        return False
    reason = (f"督查件自{LADDER_RUNGS.get(finding.rung or '', '')}起{days}日仍未整改，"
              f"升级为{LADDER_RUNGS[target]}")
    done = enter_rung(session, runtime, finding, target, decided_by="rule:time", at=now, reason=reason)
    if done is None:  # already on that rung this cycle: stop the clock rather than loop
        finding.next_review_at = None
        return False
    if target == "interview":
        from supervise_svc import interviews

        interviews.ensure_for_finding(session, runtime, finding, at=now)
    return True


def ladder_sweep(runtime: ServiceRuntime) -> dict[str, int]:
    """Climb every unrectified finding whose time at its rung ran out; one bad row is logged and skipped."""
    climbed = failed = 0
    for _ in range(LADDER_MAX_BATCHES):
        now = clock.now()
        with runtime.uow() as session:
            claimed = _claim(session, now, LADDER_BATCH)
            skipped = 0
            for finding in claimed:
                try:
                    with session.begin_nested():
                        climbed += climb_by_time(session, runtime, finding, now)
                except Exception:
                    log.exception("ladder: finding %s could not climb; skipped", finding.id)
                    failed += 1
                    skipped += 1
                    with session.begin_nested():  # leave it for a later look, not the next batch
                        finding.next_review_at = None
        if len(claimed) < LADDER_BATCH or skipped == len(claimed):
            break
    return {"climbed": climbed, "failed": failed}


# ---------------------------------------------------------------- acknowledgements (签收)


def _notice_row(session: Session, dedupe_key: str, *, notice_type: str, subject_id: str, recipient_kind: str,
                recipient_id: str, unit_id: str | None) -> FindingNotice | None:
    row = session.get(FindingNotice, dedupe_key)
    if row is None:
        if session.get(Finding, subject_id) is None:
            return None  # not a notice about a finding of ours
        row = FindingNotice(dedupe_key=dedupe_key, finding_id=subject_id, notice_type=notice_type,
                            recipient_kind=recipient_kind, recipient_id=recipient_id, unit_id=unit_id)
        session.add(row)
    return row


def project_notice_acknowledged(session: Session, event: NoticeAcknowledged) -> None:
    row = _notice_row(session, event.dedupe_key, notice_type=event.notice_type, subject_id=event.subject_id,
                      recipient_kind=event.recipient_kind, recipient_id=event.recipient_id, unit_id=event.unit_id)
    if row is not None and row.acknowledged_at is None:
        row.notice_id, row.acknowledged_at, row.via = event.notice_id, event.acknowledged_at, event.via
        row.unit_id = row.unit_id or event.unit_id


def project_notice_escalated(session: Session, event: NoticeEscalated) -> None:
    row = _notice_row(session, event.dedupe_key, notice_type=event.notice_type, subject_id=event.subject_id,
                      recipient_kind=event.recipient_kind, recipient_id=event.recipient_id, unit_id=event.unit_id)
    if row is not None:
        row.notice_id = event.notice_id
        row.escalations += 1
        row.last_escalation = {"step": event.step, "to_kind": event.to_kind, "to_id": event.to_id,
                               "to_name": event.to_name, "at": event.escalated_at.isoformat(), "reason": event.reason}


def unanswered_by_unit(session: Session, *, region_prefix: str = "") -> dict[str, int]:
    """Notices about findings not yet acknowledged, counted per recipient unit."""
    stmt = (select(FindingNotice.unit_id, func.count()).join(Finding, Finding.id == FindingNotice.finding_id)
            .where(FindingNotice.acknowledged_at.is_(None), FindingNotice.unit_id.is_not(None),
                   Finding.region_code.startswith(region_prefix))
            .group_by(FindingNotice.unit_id))
    return {unit: n for unit, n in session.execute(stmt)}
