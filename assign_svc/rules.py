"""Routing rules, leader rules and deadline policies as data: loading, editing, versions, and the
cached snapshot the petition actor routes with (rebuilt only when a version changes)."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from assign_svc.directory import person_infos, unit_infos
from assign_svc.domain.deadlines import STEPS, Policy
from assign_svc.domain.leaders import LeaderRule, PersonInfo
from assign_svc.domain.routing import RoutingRule, UnitInfo, validate_rule
from assign_svc.models import DeadlinePolicyRow, LeaderRuleRow, RoutingRuleRow
from assign_svc.versions import current_versions, record_change
from shared import clock

DATA = Path(__file__).parent / "data"
POLICY_FIELDS = ("step", "start_event", "length", "unit", "roll_forward", "basis", "level", "statutory_type",
                 "category", "purpose",
                 "channel", "region_prefix", "topic_keywords", "local", "warn_before_days", "warn_fraction")


class RuleError(ValueError):
    def __init__(self, message: str, errors: dict | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


# ---------------------------------------------------------------- routing and leader rules


def upsert_routing_rule(session: Session, data: dict, *, changed_by: str, table: type = RoutingRuleRow) -> int:
    """Create or replace one routing (or leader) rule; a new routing version."""
    if table is RoutingRuleRow:
        problems = validate_rule(data)
        if problems:
            raise RuleError("invalid routing rule", {"json": {data.get("id", "rule"): problems}})
    number = record_change(session, kind="routing", changed_by=changed_by,
                           summary=f"{'修改' if session.get(table, data['id']) else '新增'}规则 {data['id']}",
                           detail={"rule": data})
    row = session.get(table, data["id"]) or table(id=data["id"])
    row.priority, row.name, row.when = int(data["priority"]), data.get("name", data["id"]), dict(data.get("when") or {})
    if table is RoutingRuleRow:
        row.target, row.mode = dict(data.get("target") or {}), data.get("mode", "assign")
    else:
        row.leader = dict(data.get("leader") or {})
    row.active, row.version = bool(data.get("active", True)), number
    session.add(row)
    session.flush()
    return number


def load_routing_file(session: Session, path: Path | None = None, *, changed_by: str = "system") -> int:
    raw = yaml.safe_load(Path(path or DATA / "routing.yaml").read_text(encoding="utf-8")) or {}
    number = 0
    for rule in raw.get("rules") or []:
        number = upsert_routing_rule(session, rule, changed_by=changed_by)
    for rule in raw.get("leader_rules") or []:
        number = upsert_routing_rule(session, rule, changed_by=changed_by, table=LeaderRuleRow)
    return number


# ---------------------------------------------------------------- deadline policies


def _check_policy(data: dict) -> list[str]:
    problems = []
    if data.get("step") not in STEPS:
        problems.append(f"step must be one of {', '.join(STEPS)}")
    if data.get("unit") not in ("calendar_days", "working_days"):
        problems.append("unit must be calendar_days or working_days")
    if not isinstance(data.get("length"), int) or data["length"] < 1:
        problems.append("length must be a positive integer")
    if not data.get("basis"):
        problems.append("basis (legal basis) is required")
    if data.get("warn_before_days") is not None and data.get("warn_fraction") is not None:
        problems.append("give warn_before_days or warn_fraction, not both")
    return problems


def put_policy(session: Session, data: dict, *, changed_by: str) -> DeadlinePolicyRow:
    """Add a new version of policy ``data['code']`` (the previous version stays for old stages)."""
    problems = _check_policy(data)
    if problems:
        raise RuleError("invalid deadline policy", {"json": {data.get("code", "policy"): problems}})
    previous = session.scalars(select(DeadlinePolicyRow).where(DeadlinePolicyRow.code == data["code"])
                               .order_by(DeadlinePolicyRow.version.desc())).first()
    record_change(session, kind="deadlines", changed_by=changed_by,
                  summary=f"{'修改' if previous else '新增'}期限规则 {data['code']}", detail={"policy": data})
    if previous is not None:
        previous.active = False
    row = DeadlinePolicyRow(code=data["code"], version=(previous.version + 1) if previous else 1, created_at=clock.now(),
                            active=bool(data.get("active", True)),
                            **{k: data.get(k) for k in POLICY_FIELDS if k in data})
    row.topic_keywords = list(data.get("topic_keywords") or [])
    row.roll_forward = bool(data.get("roll_forward", True))
    row.local = bool(data.get("local", False))
    session.add(row)
    session.flush()
    return row


def load_deadlines_file(session: Session, path: Path | None = None, *, changed_by: str = "system") -> int:
    raw = yaml.safe_load(Path(path or DATA / "deadlines.yaml").read_text(encoding="utf-8")) or {}
    for policy in raw.get("policies") or []:
        put_policy(session, policy, changed_by=changed_by)
    return current_versions(session)["deadlines"]


def policy_of(row: DeadlinePolicyRow) -> Policy:
    return Policy(id=row.id, code=row.code, version=row.version, step=row.step, length=row.length, unit=row.unit,
                  basis=row.basis, roll_forward=row.roll_forward, start_event=row.start_event, level=row.level,
                  category=row.category, purpose=row.purpose, channel=row.channel, region_prefix=row.region_prefix,
                  topic_keywords=tuple(row.topic_keywords or ()), local=row.local,
                  warn_before_days=row.warn_before_days, warn_fraction=row.warn_fraction,
                  statutory_type=row.statutory_type)


# ---------------------------------------------------------------- the cached snapshot


@dataclass(frozen=True)
class Snapshot:
    versions: tuple[int, int, int]
    units: list[UnitInfo]
    units_by_id: dict[str, UnitInfo]
    people: list[PersonInfo]
    people_by_id: dict[str, PersonInfo]
    routing: list[RoutingRule]
    leaders: list[LeaderRule]
    policies: list[Policy]


_lock = threading.Lock()


def snapshot(session: Session, cache: dict[str, Any], versions: dict[str, int] | None = None) -> Snapshot:
    """The directory and rules in force, rebuilt when any version moved (one small query otherwise,
    none when the caller read ``versions`` in this transaction)."""
    v = versions if versions is not None else current_versions(session)
    key = (v["directory"], v["routing"], v["deadlines"])
    current = cache.get("snapshot")
    if current is not None and current.versions == key:
        return current
    units, people = unit_infos(session), person_infos(session)
    routing = [RoutingRule(id=r.id, priority=r.priority, name=r.name, when=r.when, target=r.target, mode=r.mode)
               for r in session.scalars(select(RoutingRuleRow).where(RoutingRuleRow.active.is_(True)))]
    leaders = [LeaderRule(id=r.id, priority=r.priority, name=r.name, when=r.when, leader=r.leader)
               for r in session.scalars(select(LeaderRuleRow).where(LeaderRuleRow.active.is_(True)))]
    policies = [policy_of(r) for r in session.scalars(select(DeadlinePolicyRow).where(DeadlinePolicyRow.active.is_(True)))]
    built = Snapshot(versions=key, units=units, units_by_id={u.id: u for u in units}, people=people,
                     people_by_id={p.id: p for p in people}, routing=routing, leaders=leaders, policies=policies)
    with _lock:
        cache["snapshot"] = built
    return built
