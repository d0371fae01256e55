"""The bulk path: the simulator's workload written as the rows the system writes at registration and routing.

The slow path (``shared.simulator.driver.Simulation``) registers each petition through the intake API
at 09:00 of its day, lets the broker carry ``petition.registered`` to assign (routing, deadlines) and
supervise (read model), and then plays the units' handling.  This module draws the same petitions from
``shared.simulator.workload.Workload`` (same seed, same parameters: same petitioners, texts, places,
repeats; units and their profiles from the same directory) and writes directly — COPY on PostgreSQL,
one executemany per chunk on SQLite (``shared.bulk.bulk_insert``, each value through its column's bind
processor) — what the services write for each petition up to and including its routing, computed with
the services' own functions:

intake   ``petitions`` (category from intake's code table, statutory type, 集体访, registrar level,
         display number ``{region6}{YYYYMMDD}{seq}`` in registration order, repeat detection through
         ``intake_svc.detection.detect`` on the same person's earlier petitions, case status 待签收 as
         ``case.status_changed`` leaves it), ``petitioners`` (PII sealed and blind-indexed by intake's
         ``PiiVault`` under the settings' keys), ``petition_changes`` (registered + case_status),
         ``display_sequences``.
assign   ``cases`` (routing by ``route`` + ``owning_leader`` on the live rule/directory snapshot),
         ``case_stages`` (受理告知, 异议, 交办期限 opened by ``service.open_receipt_stages``: the deadline
         policies and the working-day calendar of assign), ``case_events`` (the 交办 timeline row).
supervise the directory (``project_directory_changed`` of the directory assign loaded), ``case_views``
         and ``supervise_case_stages`` as ``petition.registered`` + ``case.assigned`` + the 交办
         ``case.action_recorded`` leave them (deadline slot columns by ``deadline_columns``).

Deliberately NOT written (document, not an oversight):

* the units' handling after 交办 (签收, 受理, 处理意见, 评价, 结案 …), and so the reflows (回流) the slow
  path draws after a dissatisfied closure: every case is as routing left it (待签收), stages open;
* outbox / inbox rows (the messages are already applied), idempotency keys, API keys, the 交办单 filed
  lazily in ``case_documents``, supervise's raw events and ``case_actions`` (the rebuild log);
* findings, their history, escalations and notices (the sweeps under benchmark create them), notify's
  inboxes and deliveries, scorecards.

A stage already past due at the end of the filled period is left unfound (``overdue_found_at`` NULL);
``mark_found_before`` marks those the sweeps of the period would have found, for a bench that must start
from a swept state.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from types import SimpleNamespace
from typing import Callable
from zoneinfo import ZoneInfo

from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select, update

from shared import clock
from shared.bulk import bulk_insert
from shared.config import Settings
from shared.regions import subtree_prefix
from shared.simulator.workload import Params, Planned, Workload
from shared.system import migrate, service_module

log = logging.getLogger(__name__)
TZ = ZoneInfo("Asia/Shanghai")
SERVICES = ("intake", "assign", "supervise")
#: Rows per table buffered before a COPY / executemany.
CHUNK = 20_000
#: Tables in the order they are written (parents first).
ORDER = ("petitions", "petitioners", "petition_changes", "display_sequences", "cases", "case_stages", "case_events",
         "case_views", "supervise_case_stages")


@dataclass
class FillParams:
    seed: int = 1
    days: int = 365
    per_day: float = 12.0
    start: date = date(2026, 1, 1)
    #: Stop after this many petitions (the last day is cut short; days are added if the period drew fewer).
    cases: int | None = None

    @classmethod
    def for_cases(cls, cases: int, *, seed: int = 1, days: int = 365, start: date = date(2026, 1, 1)) -> "FillParams":
        return cls(seed=seed, days=days, per_day=cases / days, start=start, cases=cases)

    def workload_params(self) -> Params:
        return Params(seed=self.seed, days=self.days, per_day=self.per_day)

    def at(self, day: int, hour: int = 9) -> datetime:
        """The instant the slow path registers the petitions of ``day`` (``Simulation.at``)."""
        return datetime.combine(self.start + timedelta(days=day), dtime(hour), tzinfo=TZ).astimezone(timezone.utc)


@dataclass
class FillReport:
    petitions: int = 0
    days: int = 0
    repeats: int = 0
    rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    total: float = 0.0
    end: datetime | None = None

    def lines(self) -> list[str]:
        out = [f"{self.petitions:,} petitions over {self.days} days ({self.repeats:,} linked repeats) "
               f"in {self.total:.1f} s"]
        for name, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            rows = self.rows.get(name)
            out.append(f"  {name:34s} {seconds:8.1f} s" + (f"  {rows:>11,} rows" if rows else ""))
        return out


def column_defaults(table, given) -> dict:
    """What a Core INSERT would put in the columns not ``given``: the Python-side defaults (scalars, or
    callables such as ``new_id`` / ``dict``).  Server defaults and autoincrement ids are left to the database."""
    out = {}
    for col in table.columns:
        if col.name in given or col.default is None:
            continue
        out[col.name] = col.default.arg if col.default.is_scalar else col.default
    return out


class Buffer:
    """Rows per table, written in chunks with ``shared.bulk.bulk_insert``; times each table."""

    def __init__(self, runtimes: dict, report: FillReport, chunk: int = CHUNK) -> None:
        self.runtimes, self.report, self.chunk = runtimes, report, chunk
        self.rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self.tables: dict[tuple[str, str], object] = {}
        self._defaults: dict[tuple[str, str], tuple[dict, list]] = {}
        self.full = False

    def add(self, service: str, table, row: dict) -> None:
        key = (service, table.name)
        self.tables[key] = table
        bucket = self.rows[key]
        bucket.append(row)
        if len(bucket) >= self.chunk:
            self.full = True  # written by ``flush_if_full`` between petitions (a petition's rows all at once)

    def flush_if_full(self) -> None:
        if self.full:
            self.flush()
            self.full = False

    def _complete(self, key, rows: list[dict]) -> list[dict]:
        if key not in self._defaults:
            defaults = column_defaults(self.tables[key], rows[0])
            scalars = {k: v for k, v in defaults.items() if not hasattr(v, "arg")}
            calls = [(k, v.arg) for k, v in defaults.items() if hasattr(v, "arg")]
            self._defaults[key] = (scalars, calls)
        scalars, calls = self._defaults[key]
        if scalars or calls:
            for row in rows:
                row.update(scalars)
                for name, fn in calls:
                    row[name] = fn(None)
        return rows

    def flush(self) -> None:
        """Write every buffered table, parents before children (foreign keys)."""
        for k in sorted(self.rows, key=lambda k: ORDER.index(k[1]) if k[1] in ORDER else len(ORDER)):
            rows = self.rows.pop(k, [])
            if not rows:
                continue
            service, name = k
            started = time.perf_counter()
            self._complete(k, rows)
            with self.runtimes[service].uow() as session:
                bulk_insert(session, self.tables[k], rows)
            self.report.seconds[f"write {service}.{name}"] += time.perf_counter() - started
            self.report.rows[f"write {service}.{name}"] += len(rows)


class _Span:
    __slots__ = ("report", "name", "t")

    def __init__(self, report: FillReport, name: str) -> None:
        self.report, self.name = report, name

    def __enter__(self):
        self.t = time.perf_counter()

    def __exit__(self, *exc):
        self.report.seconds[self.name] += time.perf_counter() - self.t


class Timer:
    """``with timer(name):`` adds the block's wall time to the report under ``name``."""

    def __init__(self, report: FillReport) -> None:
        self.report = report
        self.spans: dict[str, _Span] = {}

    def __call__(self, name: str) -> _Span:
        span = self.spans.get(name)
        if span is None:
            span = self.spans[name] = _Span(self.report, name)
        return span


class _Collect:
    """The one session method ``open_receipt_stages`` uses on a new case: ``add`` (the stages it opens)."""

    def __init__(self) -> None:
        self.added: list = []

    def add(self, obj) -> None:
        self.added.append(obj)


class _Candidates:
    """Stands in for intake's session in ``detect``: the candidates query answered from memory (the same
    person's earlier petitions within the window, newest first, at most ``MAX_CANDIDATES``)."""

    def __init__(self, rows: list) -> None:
        self.rows = rows

    def connection(self) -> "_Candidates":
        return self

    def execute(self, *_args, **_kwargs) -> "_Candidates":
        return self

    def all(self) -> list:
        return self.rows

    def __iter__(self):
        return iter(self.rows)


def build_runtimes(settings: Settings) -> dict:
    return {svc: service_module(svc).build_runtime(settings, broker=StubBroker()) for svc in SERVICES}


class BulkFill:
    """One fill of ``params`` into the databases of ``settings`` (intake, assign, supervise)."""

    def __init__(self, settings: Settings, params: FillParams, *, chunk: int = CHUNK,
                 progress: Callable[[int], None] | None = None) -> None:
        self.settings, self.params, self.chunk, self.progress = settings, params, chunk, progress
        self.report = FillReport()
        self.timer = Timer(self.report)

    # ------------------------------------------------------------------ set-up

    def prepare(self) -> None:
        """Create the schemas through the services' migrations and bootstrap (directory, rules, policies)."""
        with self.timer("schema (migrations + bootstrap)"):
            migrate(self.settings, SERVICES)
            self.runtimes = build_runtimes(self.settings)

    def _snapshot(self):
        from assign_svc.rules import snapshot
        from assign_svc.service import cache_of

        runtime = self.runtimes["assign"]
        with runtime.uow() as session:
            return snapshot(session, cache_of(runtime))

    def copy_directory(self) -> None:
        """supervise's copy of the directory, as ``directory.changed`` (full) from assign leaves it."""
        from assign_svc.directory import person_record, unit_record
        from assign_svc.models import Person, Unit
        from assign_svc.versions import current_versions
        from shared.contracts import DirectoryChanged
        from supervise_svc.service import project_directory_changed

        with self.timer("supervise directory"):
            with self.runtimes["assign"].uow() as session:
                units = [unit_record(u) for u in session.scalars(select(Unit).order_by(Unit.id))]
                people = [person_record(p) for p in session.scalars(select(Person).order_by(Person.id))]
                version = current_versions(session)["directory"]
            event = DirectoryChanged(version=version, changed_at=clock.now(), full=True, units=units, people=people)
            with self.runtimes["supervise"].uow() as session:
                project_directory_changed(session, event)

    # ------------------------------------------------------------------ the run

    def run(self) -> FillReport:
        started = time.perf_counter()
        self.prepare()
        self.copy_directory()
        snap = self._snapshot()
        self.snap = snap
        # The simulator's view of the directory (Simulation.setup / places): townships, counties, the city.
        units = sorted(snap.units, key=lambda u: u.id)
        places = [(u.region_code, u.region_code[:6], u.name) for u in units if u.kind == "township"]
        self.city = min(u.region_code[:6] for u in units if u.level == "city")
        self.buffer = Buffer(self.runtimes, self.report, self.chunk)
        previous_clock = clock.current()
        clock.configure(self.settings.replace(clock_control=True))
        logging.getLogger(clock.__name__).setLevel(logging.ERROR)
        try:
            self._fill(Workload(self.params.workload_params(), places))
        finally:
            clock.configure(self.settings.replace(clock_control=previous_clock.controllable))
        with self.timer("flush"):
            for (region6, day), last in sorted(self.sequences.items()):
                self.buffer.add("intake", self.tables.sequence, {"region6": region6, "day": day, "last": last})
            self.buffer.flush()
        with self.timer("analyze"):
            self.analyze()
        self.report.total = time.perf_counter() - started
        return self.report

    def _fill(self, workload: Workload) -> None:
        from intake_svc.detection import warm_up

        warm_up()
        self._setup_services()
        p, day = self.params, 0
        target = p.cases
        while True:
            if target is None and day >= p.days:
                break
            with self.timer("draw workload"):
                items = workload.day(day)
            if target is not None:
                items = items[:max(0, target - self.report.petitions)]
            now = p.at(day)
            clock.current().set(now, frozen=True)
            for item in items:
                self._one(item, day, now)
            self.report.days = day + 1
            self.report.end = now
            if self.progress:
                self.progress(len(items))
            day += 1
            if target is not None and self.report.petitions >= target:
                break

    def _setup_services(self) -> None:
        from assign_svc import service as assign_service
        from assign_svc.models import Case, CaseEvent, CaseStage
        from intake_svc.models import DisplaySequence, Petition, PetitionChange, Petitioner
        from intake_svc.pii import PiiVault
        from intake_svc.schemas import categories
        from intake_svc.service import category_version
        from supervise_svc.models import CaseStageView, CaseView

        self.vault = PiiVault(self.settings)
        self.categories = categories()
        self.category_version = category_version()
        self.tables = SimpleNamespace(petition=Petition.__table__, petitioner=Petitioner.__table__,
                                      change=PetitionChange.__table__, sequence=DisplaySequence.__table__,
                                      case=Case.__table__, stage=CaseStage.__table__, event=CaseEvent.__table__,
                                      view=CaseView.__table__, stage_view=CaseStageView.__table__)
        self.stage_columns = [c.name for c in CaseStage.__table__.columns]
        self.assign_service = assign_service
        self.sequences: dict[tuple[str, str], int] = {}
        self.by_person: dict[str, list] = defaultdict(list)  # id blind -> earlier petitions (candidate rows)
        self.stage_memo: dict[tuple, tuple] = {}
        self.route_memo: dict = {}

    def _one(self, item: Planned, day: int, now: datetime) -> None:
        timer = self.timer
        with timer("rows intake (incl. PII, detection)"):
            petition, event, found = self._intake(item, now)
        with timer("rows assign (routing, deadlines)"):
            case, stages, event_row, names = self._assign(event)
        with timer("rows supervise (read model)"):
            self._supervise(event, case, stages, names)
        with timer("intake case status"):
            # case.status_changed (待签收, by the routing) as intake applies it
            petition["case_status"], petition["case_updated_at"] = case["status"], case["assigned_at"]
            self.buffer.add("intake", self.tables.change, {
                "petition_id": petition["id"], "at": now, "actor": event_row["actor_name"], "action": "case_status",
                "changes": {"from": "", "to": case["status"], "reason": event_row["reason"]}})
            self.buffer.add("intake", self.tables.petition, petition)
        self.report.petitions += 1
        self.report.repeats += bool(found.repeat_of)
        self.buffer.flush_if_full()

    # ------------------------------------------------------------------ intake

    def _intake(self, item: Planned, now: datetime):
        from intake_svc.detection import MAX_CANDIDATES, Detection, detect
        from intake_svc.domain.rules import PURPOSES, is_group_visit, level_of_prefix
        from intake_svc.service import registered_event

        settings = self.settings
        jurisdiction = item.county if item.registrar == "county" else self.city
        system = f"sim-{jurisdiction}"
        registrar_level = level_of_prefix(subtree_prefix(jurisdiction))
        category = self.categories.resolve(item.category)
        person = item.petitioner
        fields = {"system": system, "county_no": item.key, "channel": item.channel, "purpose": item.purpose,
                  "petitioned_at": now, "people_count": item.people_count, "title": item.title,
                  "request_text": item.request_text, "facts": "", "region_code": item.region_code,
                  "complained_party": "", "legal_litigation": item.legal_litigation, "urgent": False,
                  "anonymous": person is None, "confidential": False, "first_time": True,
                  "category_code": category.code, "category_name": category.name,
                  "classic_code": category.classic_code, "category_table_version": self.category_version,
                  "registered_at": now, "received_at": now, "statutory_type": PURPOSES[item.purpose],
                  "registrar": system, "registrar_kind": "api_key", "registrar_level": registrar_level,
                  "group_visit": is_group_visit(channel=item.channel, people_count=item.people_count,
                                                threshold=settings.group_visit_threshold)}
        id_blind = self.vault.blind(person.id_number) if person else None
        phone_blind = self.vault.blind(person.phone) if person else None
        earlier = self.by_person.get(id_blind) if id_blind else None
        found = Detection()
        if earlier:
            since = now - timedelta(days=settings.repeat_window_days)
            rows = [r for r in reversed(earlier) if r[1] >= since][:MAX_CANDIDATES]
            if rows:
                found = detect(_Candidates([r[0] for r in rows]), fields=fields, id_blinds=[id_blind],
                               phone_blinds=[phone_blind], registrar_level=registrar_level,
                               window_days=settings.repeat_window_days)
        region6, local_day = item.region_code[:6], (now.astimezone(TZ)).strftime("%Y%m%d")
        seq = self.sequences.get((region6, local_day), 0) + 1
        self.sequences[(region6, local_day)] = seq
        row = dict(fields, id=uuid.uuid4().hex, display_no=f"{region6}{local_day}{seq:04d}",
                   repeat_of=found.repeat_of, repeat_of_display_no=found.repeat_of_display_no,
                   repeat_score=found.repeat_score, repeat_reasons=found.repeat_reasons, reflow=found.reflow,
                   cross_level=found.cross_level, no_longer_accepted=found.no_longer_accepted,
                   case_status="", case_resolved=False, case_final=False, case_updated_at=None)
        if found.repeat_of:
            row["first_time"] = False
        people = []
        if person is not None:
            people.append({"petition_id": row["id"], "seq": 0, "name": person.name,
                           "id_number_enc": self.vault.seal(person.id_number), "id_blind": id_blind,
                           "phone_enc": self.vault.seal(person.phone), "phone_blind": phone_blind,
                           "address_code": person.county, "address": "", "registered_at": now})
            self.by_person[id_blind].append((SimpleNamespace(
                id=row["id"], display_no=row["display_no"], title=row["title"], request_text=row["request_text"],
                facts=row["facts"], region_code=row["region_code"], category_code=row["category_code"],
                classic_code=row["classic_code"], complained_party=row["complained_party"],
                case_status="待签收", case_resolved=False, case_final=False, registrar_level=registrar_level), now))
        for p in people:
            self.buffer.add("intake", self.tables.petitioner, p)
        self.buffer.add("intake", self.tables.change, {
            "petition_id": row["id"], "at": now, "actor": row["registrar"], "action": "registered",
            "changes": {"display_no": row["display_no"], "detection": asdict(found)}})
        event = registered_event(SimpleNamespace(**row, petitioners=[SimpleNamespace(name=p["name"]) for p in people]),
                                 found)
        return row, event, found

    # ------------------------------------------------------------------ assign

    def _policies(self, case: SimpleNamespace, level: str | None) -> tuple:
        """The deadline policy ``select_policy`` picks for each step ``open_receipt_stages`` may open."""
        from assign_svc.domain.deadlines import NoPolicy, select_policy
        from assign_svc.stages import facts_of

        facts, out = facts_of(case), []
        for step in ("acceptance_notice", "objection", "assigned", "handling"):
            try:
                out.append(select_policy(self.snap.policies, step, facts, level=level).id)
            except NoPolicy:
                out.append(None)
        return tuple(out)

    def _stages(self, case: SimpleNamespace, at: datetime, level: str | None) -> tuple[list[dict], object, str]:
        """``open_receipt_stages`` on the case, memoised on what its stages depend on: the policies in force
        for its facts, its unit's level, mode and clock, the instant (the unit id is copied in afterwards)."""
        key = (self._policies(case, level), level, case.mode, case.in_clock, at)
        found = self.stage_memo.get(key)
        if found is None:
            collect = _Collect()
            runtime = self.runtimes["assign"]
            self.assign_service.open_receipt_stages(collect, runtime, self.snap, case, at=at)
            rows = [{c: getattr(s, c) for c in self.stage_columns if c not in ("id", "case_id")} for s in collect.added]
            found = (rows, case.due_at, case.deadline_basis)
            if len(self.stage_memo) > 200_000:
                self.stage_memo.clear()
            self.stage_memo[key] = found
        return [dict(r, unit_id=case.unit_id) for r in found[0]], found[1], found[2]

    def _assign(self, petition):
        from assign_svc.domain.leaders import owning_leader
        from assign_svc.domain.routing import route
        from assign_svc.domain.workflow import PENDING_SIGNATURE
        from assign_svc.service import facts_from
        from assign_svc.timeline import _jsonable

        snap = self.snap
        facts = facts_from(petition)
        memo = self.route_memo.get(facts)
        if memo is None:  # routing and the leader rule are pure functions of the facts (and the snapshot)
            decision = route(snap.routing, snap.units, facts)
            memo = (decision, owning_leader(snap.leaders, snap.units, snap.people, decision.unit, facts))
            if len(self.route_memo) > 500_000:
                self.route_memo.clear()
            self.route_memo[facts] = memo
        decision, leader = memo
        unit = decision.unit
        flags = dict(petition.flags or {})
        flags.update({k: getattr(petition, k) for k in ("group_visit", "urgent", "people_count", "confidential")})
        if facts.group_visit:
            flags["group_visit"] = True
        at = petition.registered_at
        case = SimpleNamespace(
            id=uuid.uuid4().hex, petition_id=petition.petition_id, display_no=petition.display_no, unit_id=unit.id,
            region_code=petition.region_code, category=facts.category, status=PENDING_SIGNATURE, assigned_at=at,
            due_at=at, deadline_basis="", mode=decision.mode, in_clock=decision.in_clock,
            statutory_type=facts.statutory_type, purpose=facts.purpose, channel=facts.channel, flags=flags,
            petitioner_name=petition.petitioner_name, request_text=petition.request_text,
            registered_at=petition.registered_at, leader_id=leader[0].id if leader else None,
            leader_basis=leader[1].name if leader else None, routing_rule_id=decision.rule.id,
            routing_version=snap.versions[1], directory_version=snap.versions[0],
            registered_by=getattr(petition, "registrar", None) or petition.system,
            assigned_by=f"规则：{decision.rule.name}", updated_at=at)
        stages, case.due_at, case.deadline_basis = self._stages(case, at, unit.level)
        row = vars(case)
        self.buffer.add("assign", self.tables.case, row)
        for s in stages:
            s["case_id"] = case.id
            self.buffer.add("assign", self.tables.stage, s)
        label = {"assign": "交办", "forward": "转送", "divert": "涉法涉诉分流"}[decision.mode]
        event_row = {"case_id": case.id, "seq": 1, "action": "assign", "label": label, "from_status": None,
                     "to_status": case.status, "actor_id": "system", "actor_name": "分办规则", "actor_role": "system",
                     "at": at, "reason": f"{decision.rule.name}（规则 {decision.rule.id}）",
                     "data": _jsonable({"unit_id": unit.id, "leader_id": case.leader_id, "mode": decision.mode})}
        self.buffer.add("assign", self.tables.event, event_row)
        leader_info = snap.people_by_id.get(case.leader_id) if case.leader_id else None
        names = (unit.name, leader_info.name if leader_info else None)
        return row, stages, event_row, names

    # ------------------------------------------------------------------ supervise

    def _supervise(self, petition, case: dict, stages: list[dict], names: tuple[str, str | None]) -> None:
        """The read model after petition.registered, case.assigned and the 交办 case.action_recorded
        (``supervise_svc.service`` project_petition_registered / project_case_assigned / project_case_action)."""
        from supervise_svc.service import HEADLINE_KINDS, deadline_columns

        flags = dict(petition.flags or {})
        view = {"petition_id": petition.petition_id, "display_no": petition.display_no,
                "region_code": petition.region_code, "category": petition.category,
                "registered_at": petition.registered_at, "request_text": petition.request_text, "flags": flags,
                "channel": petition.channel, "purpose": petition.purpose, "statutory_type": petition.statutory_type,
                "legal_litigation": bool(petition.legal_litigation), "group_visit": bool(petition.group_visit),
                "cross_level": bool(flags.get("cross_level")), "reflow": bool(flags.get("reflow")),
                "repeat_of": flags.get("repeat_of"),
                "case_id": case["id"], "unit_id": case["unit_id"], "unit_name": names[0],
                "assigned_at": case["assigned_at"], "due_at": case["due_at"], "deadline_basis": case["deadline_basis"],
                "leader_id": case["leader_id"], "leader_name": names[1], "mode": case["mode"],
                "in_clock": bool(case["in_clock"]), "status": "assigned", "case_state": case["status"],
                "last_event_at": case["assigned_at"]}
        at = case["assigned_at"]
        for s in stages:
            due = None if s["paused_at"] is not None else s["due_at"]
            self.buffer.add("supervise", self.tables.stage_view, {
                "case_id": case["id"], "petition_id": petition.petition_id, "unit_id": case["unit_id"],
                "region_code": petition.region_code, "kind": s["kind"], "opened_at": at, "due_at": due,
                "warn_at": s["warn_at"], "paused": s["paused_at"] is not None, "basis": s["basis"] or "",
                "policy": f"{s['policy_code']}@{s['policy_version']}", "closed_at": None, "overdue_found_at": None})
            if s["kind"] in HEADLINE_KINDS and due is not None:
                view["due_at"], view["deadline_basis"] = due, s["basis"] or view["deadline_basis"]
        view.update(deadline_columns((s["kind"], s["due_at"], None) for s in stages))
        self.buffer.add("supervise", self.tables.view, view)

    # ------------------------------------------------------------------ after loading

    def analyze(self) -> None:
        from sqlalchemy import text

        for svc in SERVICES:
            engine = self.runtimes[svc].engine
            if engine.dialect.name == "postgresql":
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE"))
            else:
                with engine.begin() as conn:
                    conn.execute(text("ANALYZE"))

    def close(self) -> None:
        for runtime in getattr(self, "runtimes", {}).values():
            runtime.close()


def mark_found_before(runtime, instant: datetime) -> int:
    """Mark open supervise stages due before ``instant`` as already found by the overdue sweep (as the
    sweeps of the filled period would have; their findings are not written).  Returns the rows marked."""
    from supervise_svc.models import CaseStageView

    with runtime.uow() as session:
        result = session.execute(update(CaseStageView).where(
            CaseStageView.closed_at.is_(None), CaseStageView.overdue_found_at.is_(None),
            CaseStageView.due_at.is_not(None), CaseStageView.due_at <= instant).values(overdue_found_at=instant))
        return result.rowcount or 0


def fill(settings: Settings, params: FillParams, *, chunk: int = CHUNK,
         progress: Callable[[int], None] | None = None) -> FillReport:
    """Fill the intake, assign and supervise databases of ``settings``; returns the report (timings)."""
    job = BulkFill(settings, params, chunk=chunk, progress=progress)
    try:
        return job.run()
    finally:
        job.close()

