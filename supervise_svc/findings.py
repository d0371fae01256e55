"""督查件 (findings): opening one per hit of a 五必查 rule, numbering, history, the lifecycle actions.

``open_finding`` opens one finding; ``open_findings`` opens a batch of them (the sweeps) with a handful of
statements and the same result as calling ``open_finding`` on each in order.  These are the only ways a
finding comes to exist (the checks, the scorecards' lagging check and follow-up calls); the INSERT cannot
duplicate under concurrency (``ON CONFLICT (dedupe_key) DO NOTHING`` on both backends).

Dedupe keys (去重键) — ``{rule}:{subject_kind}:{subject_id}:{cycle}``, at most one finding per key:

=================  ============  ================================  ===========================================
rule               subject       cycle                             meaning
=================  ============  ================================  ===========================================
overdue            case          ``{stage kind}:{due epoch s}``    each deadline of each stage, missed once
                                                                   (an extended/new due is a new cycle)
reflow             case (the     the NEW petition id               each repeat petition of a closed/resolved
                   earlier one)                                    case (化解后回流)
dissatisfied       case          ``c{case cycle}``                 one 不满意 per case cycle (either target)
not_carried_out    case          ``closure:c{case cycle}``         perfunctory closure report (应付上报), once
                                                                   per case cycle
not_carried_out    case          ``commitment:{index}``            the opinion's commitment ``index`` past its
                                                                   due date undone (不落实), once
lagging            unit          set by the scorecards             see supervise_svc/scoring (工作被动落后)
=================  ============  ================================  ===========================================

A perfunctory closure and an unfulfilled commitment are different conditions of the same rule: their
cycles (``closure:…`` / ``commitment:…``) never collide.  The case cycle is bumped when a closed case is
reopened (复查/复核 变更/撤销, reflow), so the same condition after a reopening is a new finding.
"""
from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from shared import clock
from shared.calendar import DEFAULT_TZ
from shared.contracts import FINDING_RULES, FindingChanged
from shared.bulk import bulk_insert, insert_ignoring
from shared.db import is_postgres, new_id
from shared.outbox import emit_many
from shared.runtime import ServiceRuntime
from supervise_svc.domain import ladder as rules
from supervise_svc.domain.lifecycle import IllegalTransition, next_status
from supervise_svc.models import (CaseView, Counter, DirectoryUnit, Escalation, Finding, FindingEvent,
                                  FindingNotice)

log = logging.getLogger(__name__)

__all__ = ["BadInput", "NotFound", "IllegalTransition", "open_finding", "open_findings", "act", "record",
           "emit_changed", "emit_many", "next_number", "reserve_numbers", "reserve_number_blocks", "check_spec"]


class BadInput(Exception):
    def __init__(self, message: str, errors: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.errors = errors


class NotFound(Exception):
    pass


def _insert(session: Session):
    return pg_insert if is_postgres(session) else sqlite_insert


def next_number(session: Session, prefix: str, region_code: str, at: datetime, tz: str = DEFAULT_TZ) -> str:
    """``{prefix}{region6}{YYYYMM}{seq:04d}``; the counter row is locked until the transaction ends."""
    from zoneinfo import ZoneInfo

    month = at.astimezone(ZoneInfo(tz)).strftime("%Y%m")
    key = f"{prefix}{region_code[:6]}{month}"
    stmt = (_insert(session)(Counter.__table__)
            .on_conflict_do_update(index_elements=["key"], set_={"value": Counter.__table__.c.value + 1})
            .returning(Counter.__table__.c.value))
    value = session.execute(stmt, {"key": key, "value": 1}).scalar_one()
    return f"{key}{value:04d}"


def reserve_numbers(session: Session, prefix: str, region_code: str, at: datetime, count: int,
                    tz: str = DEFAULT_TZ) -> list[str]:
    """``count`` consecutive numbers of ``next_number``'s sequence with one counter statement."""
    from zoneinfo import ZoneInfo

    month = at.astimezone(ZoneInfo(tz)).strftime("%Y%m")
    key = f"{prefix}{region_code[:6]}{month}"
    table = Counter.__table__
    stmt = _insert(session)(table).values(key=key, value=count)
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": table.c.value + stmt.excluded.value})
    last = session.execute(stmt.returning(table.c.value)).scalar_one()
    return [f"{key}{n:04d}" for n in range(last - count + 1, last + 1)]


def reserve_number_blocks(session: Session, prefix: str, counts: dict[str, int], at: datetime,
                          tz: str = DEFAULT_TZ) -> dict[str, list[str]]:
    """``reserve_numbers`` for several regions (region code -> count) with ONE counter statement (a multi-row
    upsert … RETURNING); the counter rows are written in key order, so concurrent sweeps lock them in the
    same order.  Returns region code -> its consecutive numbers."""
    from zoneinfo import ZoneInfo

    counts = {region: n for region, n in counts.items() if n > 0}
    if not counts:
        return {}
    month = at.astimezone(ZoneInfo(tz)).strftime("%Y%m")
    key_of = {region: f"{prefix}{region[:6]}{month}" for region in counts}
    wanted: dict[str, int] = {}
    for region, n in counts.items():
        wanted[key_of[region]] = wanted.get(key_of[region], 0) + n
    table = Counter.__table__
    stmt = _insert(session)(table).values([{"key": key, "value": wanted[key]} for key in sorted(wanted)])
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={"value": table.c.value + stmt.excluded.value})
    last = dict(session.execute(stmt.returning(table.c.key, table.c.value)).all())
    out: dict[str, list[str]] = {}
    for region, n in counts.items():  # regions sharing a county (same key) take consecutive blocks in turn
        key = key_of[region]
        first = last[key] - wanted[key] + 1
        out[region] = [f"{key}{v:04d}" for v in range(first, first + n)]
        wanted[key] -= n
    return out


def insert_new_findings(session: Session, rows: list[dict]) -> set[str]:
    """INSERT the finding ``rows`` (all with the same keys) ``ON CONFLICT (dedupe_key) DO NOTHING`` in one
    statement (``shared.bulk.insert_ignoring``); returns the ids actually inserted."""
    return insert_ignoring(session, Finding.__table__, rows, conflict="dedupe_key", returning="id")


def record(session: Session, finding: Finding, *, action: str, actor: str, at: datetime, reason: str = "",
           from_status: str | None = None, data: dict | None = None) -> FindingEvent:
    event = FindingEvent(finding_id=finding.id, at=at, actor=actor, action=action, from_status=from_status,
                         to_status=finding.status, rung=finding.rung, reason=reason or "", data=data or {})
    session.add(event)
    return event


def changed_payload(finding: Finding, *, at: datetime, reason: str = "") -> FindingChanged:
    return FindingChanged(
        finding_id=finding.id, finding_no=finding.finding_no, rule=finding.rule, subject_kind=finding.subject_kind,
        subject_id=finding.subject_id, unit_id=finding.unit_id, region_code=finding.region_code,
        status=finding.status, rung=finding.rung, changed_at=at, case_id=finding.case_id,
        leader_id=finding.leader_id, reason=reason)


def emit_changed(session: Session, runtime: ServiceRuntime, finding: Finding, *, at: datetime, reason: str = "") -> None:
    runtime.emit(session, changed_payload(finding, at=at, reason=reason))


def _unit_name(session: Session, unit_id: str, case_id: str | None) -> str:
    cache = session.info.setdefault("unit_names", {})
    if unit_id not in cache:
        cache[unit_id] = _lookup_unit_name(session, unit_id, case_id)
    return cache[unit_id]


def _lookup_unit_name(session: Session, unit_id: str, case_id: str | None) -> str:
    unit = session.get(DirectoryUnit, unit_id)
    if unit is not None:
        return unit.name
    if case_id:
        view = session.scalar(select(CaseView).where(CaseView.case_id == case_id))
        if view is not None and view.unit_name:
            return view.unit_name
    return unit_id


def open_finding(session, runtime, *, rule: str, subject_kind: str, subject_id: str, cycle: str,
                 unit_id: str, region_code: str, evidence: dict, detected_at: datetime,
                 case_id: str | None = None, petition_id: str | None = None, display_no: str | None = None,
                 leader_id: str | None = None, initial_rung: str | None = None, reason: str = "") -> "Finding | None":
    """Open a finding unless one with the same dedupe key exists (then return None). Emits finding.changed
    and requests the notices of its first rung (initial_rung, else the policy's first rung for the rule)."""
    from supervise_svc import interviews, ladder

    check_spec(rule=rule, subject_kind=subject_kind, subject_id=subject_id, unit_id=unit_id, region_code=region_code)
    dedupe_key = f"{rule}:{subject_kind}:{subject_id}:{cycle}"
    finding_id = new_id()
    values = dict(id=finding_id, finding_no=f"TMP{finding_id[:29]}", rule=rule, subject_kind=subject_kind,
                  subject_id=subject_id, cycle=cycle, case_id=case_id, petition_id=petition_id,
                  display_no=display_no, unit_id=unit_id, unit_name=_unit_name(session, unit_id, case_id),
                  region_code=region_code, leader_id=leader_id, evidence=evidence, detected_at=detected_at,
                  status="open", rung=None, held=False, hold_reason="", proof="", cycle_no=1,
                  dedupe_key=dedupe_key, updated_at=detected_at)
    # The unique dedupe key decides: a concurrent or repeated detection inserts nothing.
    stmt = _insert(session)(Finding).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(Finding)
    finding = session.scalars(stmt, values).one_or_none()
    if finding is None:
        return None
    session.info.setdefault("fresh_findings", set()).add(finding.id)
    policy = ladder.current_policy(session)
    start = initial_rung or rules.first_rung(policy, rule)
    decided_by = "rule:initial" if initial_rung else f"rule:first_rung_{rule}"
    floor, floor_rule = _repeat_floor(session, policy, unit_id=unit_id, case_id=case_id, at=detected_at)
    if rules.rank(floor) > rules.rank(start):
        start, decided_by = floor, f"rule:{floor_rule}"
    finding.finding_no = next_number(session, "DC", region_code, detected_at, runtime.settings.timezone)
    record(session, finding, action="open", actor="system", at=detected_at,
           reason=reason or f"{FINDING_RULES[rule]}：{evidence.get('text', '')}", data={"cycle": cycle})
    with session.no_autoflush:  # one flush for the whole opening, not one per lookup
        ladder.enter_rung(session, runtime, finding, start, decided_by=decided_by, at=detected_at,
                          reason=reason or evidence.get("text", "") or FINDING_RULES[rule], emit=False, fresh=True)
        if rule == "overdue":
            ladder.request_overdue_notice(session, runtime, finding)
        emit_changed(session, runtime, finding, at=detected_at, reason="opened")
    if finding.rung == "interview":
        interviews.ensure_for_finding(session, runtime, finding, at=detected_at)
    log.info("finding %s (%s) opened against %s at rung %s", finding.finding_no, rule, unit_id, finding.rung)
    return finding


def check_spec(*, rule: str, subject_kind: str, subject_id, unit_id, region_code, **_) -> None:
    """ValueError when the finding to open is malformed (a sweep logs and skips that row)."""
    if rule not in FINDING_RULES:
        raise ValueError(f"unknown finding rule {rule!r}")
    if subject_kind not in ("case", "unit"):
        raise ValueError(f"unknown subject kind {subject_kind!r}")
    for name, value in (("subject_id", subject_id), ("unit_id", unit_id), ("region_code", region_code)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"finding without {name}")


def _unit_names(session: Session, specs: list[dict]) -> dict[str, str]:
    """unit id -> name as ``_unit_name`` answers it (directory, else the case view, else the id)."""
    unit_ids = sorted({s["unit_id"] for s in specs})
    names = dict(session.execute(select(DirectoryUnit.id, DirectoryUnit.name)
                                 .where(DirectoryUnit.id.in_(unit_ids))).all())
    missing = {s["case_id"]: s["unit_id"] for s in specs if s["unit_id"] not in names and s.get("case_id")}
    if missing:
        for case_id, unit_name in session.execute(select(CaseView.case_id, CaseView.unit_name)
                                                  .where(CaseView.case_id.in_(sorted(missing)))):
            if unit_name and missing[case_id] not in names:
                names[missing[case_id]] = unit_name
    return names


def _batch_counter(session: Session, policy: dict, specs: list[dict], at: datetime):
    """``count(scope, days)`` of ``_repeat_floor`` for each spec in turn, as if they were opened one by one:
    the findings already stored (one GROUP BY per repeat rule) + those opened earlier in the batch + itself."""
    stored: dict[tuple[str, int], dict[str, int]] = {}
    for rule in policy.get("repeat", []) or []:
        scope, days = rule["scope"], int(rule["days"])
        if (scope, days) in stored:
            continue
        column = Finding.unit_id if scope == "unit" else Finding.case_id
        values = sorted({s["unit_id"] if scope == "unit" else s.get("case_id") for s in specs} - {None})
        stored[(scope, days)] = dict(session.execute(
            select(column, func.count()).where(column.in_(values), Finding.detected_at >= at - timedelta(days=days))
            .group_by(column)).all()) if values else {}
    before: dict[tuple[str, str], int] = {}

    def counter(spec: dict):
        def count(scope: str, days: int) -> int:
            value = spec["unit_id"] if scope == "unit" else spec.get("case_id")
            if value is None:
                return 1
            return stored[(scope, int(days))].get(value, 0) + before.get((scope, value), 0) + 1
        return count

    def opened(spec: dict) -> None:
        for scope, value in (("unit", spec["unit_id"]), ("case", spec.get("case_id"))):
            if value is not None:
                before[(scope, value)] = before.get((scope, value), 0) + 1

    return counter, opened


def open_findings(session: Session, runtime: ServiceRuntime, specs: list[dict], *,
                  detected_at: datetime) -> list[str]:
    """Open many findings detected at ``detected_at``: the same findings, numbers, rungs, history, escalations,
    notices and finding.changed messages as ``open_finding(**spec)`` for each spec in order, with a handful
    of statements — one SELECT of the existing dedupe keys, one of the unit names, one GROUP BY per repeat
    rule, three of the directory, one counter upsert for all the region-months, the findings in one INSERT …
    ON CONFLICT (dedupe_key) DO NOTHING RETURNING id (``insert_new_findings``), then one bulk write each of the
    history, escalations and notices (``bulk_insert``: COPY on PostgreSQL) and one executemany INSERT of the
    outbox rows (``shared.outbox.emit_many``).  Returns the ids of the findings opened (a spec whose key exists opens nothing).

    Each spec holds ``open_finding``'s keyword arguments except ``detected_at`` (validate each with
    ``check_spec`` first).  Any error leaves the caller to roll back its savepoint (and go row by row)."""
    from supervise_svc import interviews, ladder

    if not specs:
        return []
    keyed: dict[str, dict] = {}
    for spec in specs:
        keyed.setdefault(f"{spec['rule']}:{spec['subject_kind']}:{spec['subject_id']}:{spec['cycle']}", spec)
    existing = set(session.scalars(select(Finding.dedupe_key).where(Finding.dedupe_key.in_(list(keyed)))))
    todo = [(key, spec) for key, spec in keyed.items() if key not in existing]
    if not todo:
        return []
    at, tz = detected_at, runtime.settings.timezone
    policy = ladder.current_policy(session)
    names = _unit_names(session, [s for _, s in todo])
    counter, counted = _batch_counter(session, policy, [s for _, s in todo], at)
    rows, plans = [], []
    for key, spec in todo:
        rule, initial = spec["rule"], spec.get("initial_rung")
        start = initial or rules.first_rung(policy, rule)
        decided_by = "rule:initial" if initial else f"rule:first_rung_{rule}"
        floor, floor_rule = rules.repeat_floor(policy, functools.cache(counter(spec)))
        if rules.rank(floor) > rules.rank(start):
            start, decided_by = floor, f"rule:{floor_rule}"
        counted(spec)
        rows.append(dict(id=new_id(), finding_no="", rule=rule, subject_kind=spec["subject_kind"],
                         subject_id=spec["subject_id"], cycle=spec["cycle"], case_id=spec.get("case_id"),
                         petition_id=spec.get("petition_id"), display_no=spec.get("display_no"),
                         unit_id=spec["unit_id"], unit_name=names.get(spec["unit_id"], spec["unit_id"]),
                         region_code=spec["region_code"], leader_id=spec.get("leader_id"),
                         evidence=spec["evidence"], detected_at=at, status="open", rung=start, rung_since=at,
                         rectify_due_at=rules.rectify_due(policy, rule, at),
                         next_review_at=rules.review_due(policy, rule, start, at), held=False, hold_reason="",
                         proof="", cycle_no=1, dedupe_key=key, updated_at=at))
        plans.append((spec, decided_by))
    by_region: dict[str, list[dict]] = {}  # one number sequence per county and month (one month here)
    for row in rows:
        by_region.setdefault(row["region_code"][:6], []).append(row)
    numbers = reserve_number_blocks(session, "DC", {region: len(group) for region, group in by_region.items()}, at, tz)
    for region, group in by_region.items():
        for row, number in zip(group, numbers[region], strict=True):
            row["finding_no"] = number
    inserted = insert_new_findings(session, rows)  # a concurrent opener may have won a key: skipped
    opened = [(SimpleNamespace(**row), spec, decided_by)  # plain rows: the notices only read them
              for row, (spec, decided_by) in zip(rows, plans, strict=True) if row["id"] in inserted]
    if not opened:
        return []
    lookup = ladder.DirectoryLookup(session, unit_ids=[f.unit_id for f, _, _ in opened],
                                    leader_ids=[f.leader_id for f, _, _ in opened],
                                    region_codes=[f.region_code for f, _, _ in opened])
    now = clock.now()
    events, escalations, notices, payloads = [], [], [], []
    for finding, spec, decided_by in opened:
        reason, rule, rung = spec.get("reason") or "", finding.rule, finding.rung
        text = finding.evidence.get("text", "")
        rung_reason = reason or text or FINDING_RULES[rule]
        events.append(dict(finding_id=finding.id, at=at, actor="system", action="open", from_status=None,
                           to_status="open", rung=None, reason=reason or f"{FINDING_RULES[rule]}：{text}",
                           data={"cycle": finding.cycle}))
        events.append(dict(finding_id=finding.id, at=at, actor=decided_by, action="enter_rung", from_status="open",
                           to_status="open", rung=rung, reason=rung_reason, data={"from_rung": None, "to_rung": rung}))
        escalations.append(dict(finding_id=finding.id, cycle_no=1, rung=rung, decided_by=decided_by, at=at,
                                reason=rung_reason))
        wanted = ladder.rung_notices(finding, rung, ladder.recipients(session, finding, rung, lookup),
                                     reason=rung_reason)
        if rule == "overdue":
            wanted.append(ladder.overdue_notice(finding))
        for kwargs in wanted:
            payload, row = ladder.notice_request(finding, requested_at=now, **kwargs)
            payloads.append(payload)
            notices.append(row)
        payloads.append(changed_payload(finding, at=at, reason="opened"))
    bulk_insert(session, FindingEvent.__table__, events)
    bulk_insert(session, Escalation.__table__, escalations)
    bulk_insert(session, FindingNotice.__table__, notices)
    emit_many(session, runtime.outbox_model, payloads, producer=runtime.name)
    ids = [f.id for f, _, _ in opened]
    session.info.setdefault("fresh_findings", set()).update(ids)
    for finding, _, _ in opened:
        if finding.rung == "interview":
            interviews.ensure_for_finding(session, runtime, session.get(Finding, finding.id), at=at)
    log.info("%d finding(s) opened in one batch (%s)", len(ids), ", ".join(sorted({f.rule for f, _, _ in opened})))
    return ids


def _repeat_floor(session: Session, policy: dict, *, unit_id: str, case_id: str | None, at: datetime):
    @functools.cache
    def count(scope: str, days: int) -> int:  # the new finding (already inserted) included
        if scope == "case" and not case_id:
            return 1
        column, value = (Finding.unit_id, unit_id) if scope == "unit" else (Finding.case_id, case_id)
        return (session.scalar(select(func.count()).select_from(Finding).where(
            column == value, Finding.detected_at >= at - timedelta(days=days))) or 0)

    return rules.repeat_floor(policy, count)


def get(session: Session, finding_id: str, *, lock: bool = False) -> Finding:
    stmt = select(Finding).where(Finding.id == finding_id)
    if lock and is_postgres(session):
        stmt = stmt.with_for_update()
    finding = session.scalar(stmt)
    if finding is None:
        raise NotFound(f"督查件 {finding_id} 不存在")
    return finding


def act(session: Session, runtime: ServiceRuntime, *, finding_id: str, action: str, actor: str,
        data: dict) -> Finding:
    """A lifecycle or ladder action on a finding by a person; every one recorded in the history."""
    from supervise_svc import ladder

    finding = get(session, finding_id, lock=True)
    now = clock.now()
    reason = str(data.get("reason") or "").strip()
    previous = finding.status
    finding.status = next_status(action, finding.status)  # IllegalTransition -> 409
    if action in ("climb", "hold", "reopen") and not reason:
        raise BadInput("需要说明理由", {"reason": ["必填"]})
    if action == "climb":
        target = data.get("rung") or rules.next_rung(finding.rung)
        if target is None or rules.rank(target) <= rules.rank(finding.rung):
            raise BadInput("只能升到比当前更高的档次", {"rung": [f"当前档次为 {finding.rung}，已是最高或目标不高于当前"]})
        ladder.enter_rung(session, runtime, finding, target, decided_by=actor, at=now, reason=reason)
        if target == "interview":
            from supervise_svc import interviews

            interviews.ensure_for_finding(session, runtime, finding, at=now)
        return finding
    if action == "hold":
        finding.held, finding.hold_reason, finding.next_review_at = True, reason, None
    elif action == "release":
        finding.held, finding.hold_reason = False, ""
        finding.next_review_at = ladder.review_at(session, finding, now)
    elif action == "submit_rectification":
        proof = str(data.get("proof") or "").strip()
        if not proof:
            raise BadInput("提交整改需要整改情况说明（证明材料）", {"proof": ["必填"]})
        finding.proof, finding.next_review_at = proof, None
    elif action == "reopen":
        finding.cycle_no += 1
        finding.rung_since = now
        finding.next_review_at = ladder.review_at(session, finding, now)
        finding.rectify_due_at = rules.rectify_due(ladder.current_policy(session), finding.rule, now)
    elif action in ("verify", "close"):
        finding.next_review_at = None
    finding.updated_at = now
    record(session, finding, action=action, actor=actor, at=now, reason=reason or str(data.get("proof") or ""),
           from_status=previous, data={k: v for k, v in data.items() if k != "reason"})
    if finding.status != previous or action in ("hold", "release"):
        emit_changed(session, runtime, finding, at=now, reason=action)
    return finding
