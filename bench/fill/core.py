"""The bulk path: the simulator's workload written as the rows the system writes for it.

The slow path (``shared.simulator.driver.Simulation``) registers each petition through the intake API
at 09:00 of its day, lets the broker carry ``petition.registered`` to assign (routing, deadlines) and
supervise (read model), and plays the units' handling at 15:00.  This module draws the same petitions from
``shared.simulator.workload.Workload`` (same seed, same parameters: same petitioners, texts, places,
repeats; units and their profiles from the same directory), plays the same handling
(``bench.fill.handling``: the same plans, the same draws, the returns 回流 it sets off) and writes what the
services write, computed with their own functions — COPY in writer threads on PostgreSQL
(``bench.fill.pg``: indexes and keys built after the load), one executemany per chunk on SQLite
(``shared.bulk.bulk_insert``).  A case's rows are held in memory while it is handled and written once its
handling is over (or at the end of the period, as it then stands).

Shards (分片, worker processes).  Cases depend on each other only through the petitioner: repeat detection
compares a petition with the same person's earlier ones (and their cases' current statuses), and a
dissatisfied petitioner's return (回流) is drawn four days after the closure.  Every draw of a case's
handling comes from the case's own generator (``random.Random(f"{seed}-{key}")``, as the simulator's
``CaseTrack.rng``: plan, answer, grades), so a case's handling does not depend on the other cases.  The
parent process draws the workload day by day (``Workload`` is sequential: returns are drawn in it), numbers
the petitions (display numbers per county and day, registration order; it writes ``display_sequences``) and
deals them out by the petitioner's identity number (``shard_of``: a person's petitions, repeats and
returns in one shard; two people who drew the same number too, as intake's blind index sees them as one).
Each shard — a forked worker process on PostgreSQL (``WORKERS``, ``--workers``), the one in-process shard on
SQLite — registers its petitions at 09:00, plays its open cases' handling at 15:00 in registration order
and writes its rows through its own COPY connections; it reports back the returns its closures set off,
which the parent draws ``RETURN_LAG`` days later (so the shards may run that many days behind the drawing,
and do not wait on each other).  The result is the same rows whatever the number of shards (ids aside).

intake   ``petitions`` (category from intake's code table, statutory type, 集体访, registrar level,
         display number ``{region6}{YYYYMMDD}{seq}`` in registration order, repeat detection through
         ``intake_svc.detection.detect`` on the same person's earlier petitions — with their cases' current
         statuses, so a return after a closure is 回流 — and the case columns ``case.status_changed`` leaves),
         ``petitioners`` (PII sealed and blind-indexed by intake's ``PiiVault`` under the settings' keys),
         ``petition_changes`` (registered + every case status), ``display_sequences``.
assign   ``cases`` (routing by ``route`` + ``owning_leader`` on the live rule/directory snapshot, then the
         handling's state, deadlines, extension, opinion, service, evaluations, closure, resolution),
         ``case_stages`` (``service.open_receipt_stages`` at 交办, ``stages.open_stage`` / ``extend`` after:
         the deadline policies and the working-day calendar of assign; closed with their outcome),
         ``case_events`` (the 交办 row and one per action).
supervise the directory (``project_directory_changed`` of the directory assign loaded), ``case_views`` and
         ``supervise_case_stages`` as the projection leaves them (``_fold_particulars``, deadline slot
         columns by ``deadline_columns``, ``deadline_rows`` on the scored stage rows of multi-row cases),
         ``supervise_score_facts`` (``scores.facts.case_facts`` on the case's final view and stage rows, what
         ``facts.rebuild_all`` makes of them).

Deliberately NOT written (document, not an oversight):

* outbox / inbox rows (the messages are already applied), idempotency keys, API keys, the documents
  (交办单, 受理告知书 … in ``case_documents``), notices, supervise's raw events and ``case_actions``;
* what the sweeps and checks write: findings, their history, escalations, notices, the overdue marks
  (``overdue_found_at``: ``mark_found_before`` marks those the sweeps of the period would have found),
  ``warned_at``, ``reflow_checked`` and the cycle a reflow finding bumps; 回访 (follow-ups), interviews,
  notify's inboxes and deliveries, scorecards.
"""
from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import queue
import random
import sys
import time
import traceback
import zlib
from collections import defaultdict, deque
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from operator import attrgetter
from types import SimpleNamespace
from typing import Callable
from zoneinfo import ZoneInfo

from dramatiq.brokers.stub import StubBroker
from sqlalchemy import JSON, select, update

from shared import clock
from shared.bulk import bulk_insert
from shared.calendar import WorkCalendar
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
#: The tables the fill writes, per service (their indexes and keys are built after the load on PostgreSQL).
FILLED_TABLES = {"intake": ["petitions", "petitioners", "petition_changes", "display_sequences"],
                 "assign": ["cases", "case_stages", "case_events"],
                 "supervise": ["case_views", "supervise_case_stages", "supervise_score_facts"]}
#: Worker processes (shards) on PostgreSQL by default: the machine's two cores.
WORKERS = 2
#: A dissatisfied petitioner comes back this many days after the closure (``Simulation._reflows_due``).
RETURN_LAG = 4
#: The interpreter's thread switch interval in the worker processes (default 5 ms).
SWITCH_INTERVAL = 0.001
ORDER = ("petitions", "petitioners", "petition_changes", "display_sequences", "cases", "case_stages", "case_events",
         "case_views", "supervise_case_stages", "supervise_score_facts")


_ids = random.Random()  # seeded from os.urandom once: ids as random as uuid4's, without a syscall per id
#: The bits ``uuid.UUID(int=n, version=4)`` sets (version 4, RFC 4122 variant) and those it clears.
_UUID4_SET = (4 << 76) | (0x8000 << 48)
_UUID4_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)


def new_id() -> str:
    """A fresh UUID4 as 32 hex characters (``shared.db.new_id``'s format), from a PRNG seeded once: the
    hex of ``uuid.UUID(int=n, version=4)`` computed without building the UUID object."""
    return f"{_ids.getrandbits(128) & _UUID4_KEEP | _UUID4_SET:032x}"


def _fast_default(arg) -> Callable[[], object]:
    """A column's Python-side default as a call without arguments; ``shared.db.new_id`` (uuid4: a
    ``getrandom`` call per id, which releases the GIL to the COPY writer threads) replaced by ``new_id``."""
    from shared import db

    if getattr(arg, "__wrapped__", None) is db.new_id:
        return new_id
    return lambda: arg(None)


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
    workers: int = 1

    def lines(self) -> list[str]:
        out = [f"{self.petitions:,} petitions over {self.days} days ({self.repeats:,} linked repeats, "
               f"{self.rows.get('actions replayed', 0):,} handling actions replayed) in {self.total:.1f} s"
               f" ({self.workers} worker process{'es' if self.workers > 1 else ''})"]
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

    def __init__(self, runtimes: dict, report: FillReport, chunk: int = CHUNK, sink=None,
                 write: tuple[str, ...] = SERVICES) -> None:
        self.runtimes, self.report, self.chunk, self.write = runtimes, report, chunk, write
        self.sink = sink  # PostgreSQL: bench.fill.pg.CopySink (COPY in writer threads)
        self.rows: dict[tuple[str, str], list[dict]] = defaultdict(list)
        self.tables: dict[tuple[str, str], object] = {}
        self._defaults: dict[tuple[str, str], tuple[dict, list]] = {}
        self.full = False

    def add(self, service: str, table, row: dict) -> None:
        if service not in self.write:
            return
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
            calls = [(k, _fast_default(v.arg)) for k, v in defaults.items() if hasattr(v, "arg")]
            self._defaults[key] = (scalars, calls)
        scalars, calls = self._defaults[key]
        if scalars:
            for row in rows:
                row.update(scalars)
        for name, fn in calls:
            for row in rows:
                row[name] = fn()
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
            if self.sink is not None and service in self.sink.queues:
                self.sink.put(service, self.tables[k], rows)
                self.report.seconds["hand chunks to the COPY writers (queue full: waits)"] += time.perf_counter() - started
                continue
            table = self.tables[k]
            json_cols = [c.name for c in table.columns if isinstance(c.type, JSON) and c.name in rows[0]]
            groups: dict[tuple, list] = defaultdict(list)  # a JSON column's None is SQL NULL, as the ORM leaves it
            for row in rows:
                groups[tuple(c for c in json_cols if row[c] is None)].append(row)
            with self.runtimes[service].uow() as session:
                for nulls, group in groups.items():
                    if nulls:
                        group = [{c: v for c, v in row.items() if c not in nulls} for row in group]
                    bulk_insert(session, table, group)
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


class MemoCalendar(WorkCalendar):
    """Assign's working-day calendar with ``is_workday`` answered once per date (installed as the fill's
    ``runtime.extras["calendar"]``, which ``assign_svc.stages.calendar_for`` prefers): every deadline counts
    days through it, and ``chinese_calendar`` scans its whole holiday table on each call."""

    def __init__(self, base: WorkCalendar) -> None:
        self.__dict__.update(vars(base))  # the same overrides, declared years and unknown-year rule
        self.workdays: dict[date, bool] = {}

    def is_workday(self, d: date) -> bool:
        found = self.workdays.get(d)
        if found is None:
            found = self.workdays[d] = super().is_workday(d)
        return found


class Sealer:
    """``PiiVault.seal`` (a Fernet token under the vault's encrypting key) with the 16-byte IVs drawn from
    ``os.urandom`` ``BATCH`` at a time: one system call, hence one release of the GIL to the COPY writer
    threads, per ``BATCH`` values instead of one per value.  Made in each shard (a forked worker draws its
    own IVs); checked once against the vault, which must open what it seals."""

    BATCH = 4096

    def __init__(self, vault) -> None:
        self.fernet = vault.cipher._fernet._fernets[0]  # MultiFernet encrypts with its first key
        self.ivs, self.used = b"", 0
        if vault.open(self.seal("0")) != "0":
            raise RuntimeError("the fill's sealed values would not open with intake's PII key")

    def seal(self, value: str | None) -> str | None:
        if not value:
            return None
        if self.used == len(self.ivs):
            self.ivs, self.used = os.urandom(16 * self.BATCH), 0
        iv = self.ivs[self.used:self.used + 16]
        self.used += 16
        return self.fernet._encrypt_from_parts(value.encode("utf-8"), int(time.time()), iv).decode("ascii")


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


def shard_of(item: Planned, index: int, shards: int) -> int:
    """The shard a petition is registered and handled in: by the petitioner's identity number (all petitions
    of one person, repeats and returns included, in one shard: repeat detection stays inside it), the
    anonymous ones in turn."""
    person = item.petitioner
    if person is None or shards == 1:
        return index % shards
    return zlib.crc32(person.id_number.encode()) % shards


class _LocalShard:
    """The one shard, in this process (SQLite; ``workers=1``): messages handled as they are sent."""

    remote = False

    def __init__(self, job: "BulkFill") -> None:
        self.job, self.replies = job, deque()
        job._shard_start(remote=False)

    def send(self, msg: tuple) -> None:
        self.replies.append(self.job._shard_handle(msg))

    def recv(self) -> tuple:
        return self.replies.popleft()

    def kill(self) -> None:
        if self.job.sink is not None and not self.job.sink.closed:
            try:
                self.job.sink.close()
            except RuntimeError:
                pass  # the error being raised is the one to report

    def join(self) -> None:
        pass


class _ProcessShard:
    """A shard in a forked worker process (its own COPY connections and writer threads): days in through
    one queue, the returns they set off (and at the end its report) back through another."""

    remote = True

    def __init__(self, job: "BulkFill", number: int) -> None:
        ctx = multiprocessing.get_context("fork")
        self.number, self.inbox, self.outbox = number, ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(target=self._main, args=(job,), name=f"fill-shard-{number}", daemon=True)
        self.process.start()

    def _main(self, job: "BulkFill") -> None:
        try:
            job._shard_start(remote=True)
            while True:
                msg = self.inbox.get()
                self.outbox.put(job._shard_handle(msg))
                if msg[0] == "end":
                    break
        except BaseException:  # noqa: BLE001 - reported to the parent, which raises it
            self.outbox.put(("error", traceback.format_exc()))

    def send(self, msg: tuple) -> None:
        self.inbox.put(msg)

    def recv(self) -> tuple:
        while True:
            try:
                msg = self.outbox.get(timeout=5)
            except queue.Empty:
                if not self.process.is_alive():
                    raise RuntimeError(f"fill worker {self.number} died (exit code {self.process.exitcode})") from None
                continue
            if msg[0] == "error":
                raise RuntimeError(f"fill worker {self.number} failed:\n{msg[1]}")
            return msg

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()

    def join(self) -> None:
        self.process.join()


def build_runtimes(settings: Settings) -> dict:
    return {svc: service_module(svc).build_runtime(settings, broker=StubBroker()) for svc in SERVICES}


class BulkFill:
    """One fill of ``params`` into the databases of ``settings`` (intake, assign, supervise)."""

    def __init__(self, settings: Settings, params: FillParams, *, chunk: int = CHUNK,
                 progress: Callable[[int], None] | None = None, replay: bool = True,
                 write: tuple[str, ...] = SERVICES, workers: int | None = 1) -> None:
        self.settings, self.params, self.chunk, self.progress = settings, params, chunk, progress
        self.workers = workers  # shards in worker processes (None: WORKERS on PostgreSQL, else 1 in-process)
        self.replay = replay  # play the units' handling after 交办 (bench.fill.handling)
        self.write = write  # the services whose rows are written (the others are computed only)
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
        engines = {svc: self.runtimes[svc].engine for svc in self.write}
        self.postgres = {svc: e for svc, e in engines.items() if e.dialect.name == "postgresql"}
        workers = self.workers
        if workers is None:  # worker processes on PostgreSQL (COPY per worker); SQLite has one writer
            workers = WORKERS if self.postgres and len(self.postgres) == len(engines) else 1
        self.report.workers = workers
        with ExitStack() as stack:
            if self.postgres:  # indexes and keys built after the load
                from bench.fill.pg import deferred_constraints

                stack.enter_context(deferred_constraints(self.postgres, {svc: FILLED_TABLES[svc] for svc in self.postgres},
                                                         self.report.seconds))
            previous_clock = clock.current()
            clock.configure(self.settings.replace(clock_control=True))
            logging.getLogger(clock.__name__).setLevel(logging.ERROR)
            try:
                self._fill(Workload(self.params.workload_params(), places), workers)
            finally:
                clock.configure(self.settings.replace(clock_control=previous_clock.controllable))
            with self.timer("write display sequences"):
                buffer = Buffer(self.runtimes, self.report, self.chunk, write=self.write)
                for (region6, day), last in sorted(self.sequences.items()):
                    buffer.add("intake", self.tables.sequence, {"region6": region6, "day": day, "last": last})
                buffer.flush()
        with self.timer("analyze"):
            self.analyze()
        self.report.total = time.perf_counter() - started
        return self.report

    # ------------------------------------------------------------------ the parent: the workload, dealt out

    def _fill(self, workload: Workload, workers: int = 1) -> None:
        """Day by day as ``Simulation.run``: the day's petitions (and the returns due) drawn here, numbered
        (display numbers per county and day, in registration order) and dealt out to the shards by
        petitioner (``shard_of``); each shard registers its petitions at 09:00 and plays the handling due at
        15:00 for its open cases in registration order (``_shard_day``).  The returns (回流) a closure on
        day d sets off are drawn on day d + 4 (``Simulation._reflows_due``), so the shards may run up to
        ``RETURN_LAG`` - 1 days behind the drawing."""
        from intake_svc.detection import warm_up

        from bench.fill.handling import Handling

        warm_up()
        self._setup_services()
        self.handling = Handling(self, self.params.seed, self.params.start, self._profiles(),
                                 self._people(listing=True), self._people(listing=False)) if self.replay else None
        # The cyclic collector is off during the fill: it holds millions of objects (the workload, open cases,
        # detection candidates) and makes no reference cycles (a 100k fill's collections freed nothing), so
        # every collection only rescanned them (~7% of a worker's CPU).
        enabled = gc.isenabled()
        gc.collect()
        gc.freeze()  # what exists now (modules, snapshot, memos) is not scanned by the collection after the fill
        gc.disable()
        try:
            shards = [_LocalShard(self)] if workers <= 1 else [_ProcessShard(self, n) for n in range(workers)]
            try:
                self._deal(workload, shards)
            except BaseException:
                for shard in shards:
                    shard.kill()
                raise
            for shard in shards:
                shard.join()
        finally:
            gc.unfreeze()
            if enabled:
                gc.enable()

    def _deal(self, workload: Workload, shards: list) -> None:
        p, day, target, n = self.params, 0, self.params.cases, len(shards)
        returns: dict[int, list] = defaultdict(list)  # day -> (registration index, key) of the returns due
        returning: dict[str, Planned] = {}  # key -> a petition whose petitioner comes back if dissatisfied
        sent: deque = deque()  # (day, petitions) sent to the shards, not yet reported back
        index = 0
        while True:
            if target is None and day >= p.days:
                break
            while sent and sent[0][0] <= day - RETURN_LAG:
                self._collect(shards, sent.popleft(), returns)
            with self.timer("draw workload"):
                items = workload.day(day)
                for _, key in sorted(returns.pop(day, [])):
                    items.append(workload.repeat(returning.pop(key), day, reflow=True))  # Simulation._reflows_due
            if target is not None:
                items = items[:max(0, target - self.report.petitions)]
            now = p.at(day)
            local_day = now.astimezone(TZ).strftime("%Y%m%d")
            batches: list[list] = [[] for _ in shards]
            sequences = self.sequences
            for item in items:
                region6 = item.region_code[:6]
                seq = sequences[(region6, local_day)] = sequences.get((region6, local_day), 0) + 1
                person = item.petitioner
                if person is not None and person.returns and person.dissatisfied and not item.reflow:
                    returning[item.key] = item
                batches[shard_of(item, index, n)].append((index, f"{region6}{local_day}{seq:04d}", item))
                index += 1
            with self.timer("hand the day to the shards" if shards[0].remote else "the shard's work (in this process)"):
                for shard, batch in zip(shards, batches, strict=True):
                    shard.send(("day", day, batch))
            sent.append((day, len(items)))
            self.report.petitions += len(items)
            self.report.days = day + 1
            self.report.end = now
            day += 1
            if target is not None and self.report.petitions >= target:
                break
        for shard in shards:
            shard.send(("end",))
        while sent:
            self._collect(shards, sent.popleft(), returns)
        for shard in shards:
            _, seconds, rows, repeats = shard.recv()
            if shard.remote:
                self.report.repeats += repeats
                for name, value in seconds.items():
                    self.report.seconds[f"{name} [{n} workers, summed]"] += value
                for name, value in rows.items():
                    self.report.rows[f"{name} [{n} workers, summed]" if name in seconds else name] += value

    def _collect(self, shards: list, sent: tuple[int, int], returns: dict) -> None:
        """The shards' report of a day: the returns its closures set off (drawn RETURN_LAG days later)."""
        day, count = sent
        with self.timer("wait for the shards"):
            for shard in shards:
                kind, done, back = shard.recv()
                assert kind == "day" and done == day, (kind, done, day)
                for due, index, key in back:
                    returns[due].append((index, key))
        if self.progress:
            self.progress(count)

    # ------------------------------------------------------------------ a shard: registration and handling

    def _shard_start(self, *, remote: bool) -> None:
        """A shard's state: its own open cases, detection candidates, buffer and (PostgreSQL) COPY writers."""
        self.remote, self.cpu_at_start = remote, time.process_time()
        if remote:  # a forked worker: its own ids, report, connections and clock
            _ids.seed()
            # the clock in this process's memory: the clock file of the settings is shared by every worker
            clock.install(clock.Clock(store=clock.MemoryStore(), controllable=True))
            # the COPY threads get the GIL back sooner after their socket writes (the builder waits less on them)
            sys.setswitchinterval(SWITCH_INTERVAL)
            self.report = FillReport()
            self.timer = Timer(self.report)
            for runtime in self.runtimes.values():
                runtime.engine.dispose(close=False)
        self.due: dict[int, list] = defaultdict(list)  # day -> the open cases with a step due that day
        self.sink = None
        if self.postgres:
            from bench.fill.pg import CopySink

            self.sink = CopySink(self.postgres, self.report.seconds, self.report.rows)
        self.buffer = Buffer(self.runtimes, self.report, self.chunk, sink=self.sink, write=self.write)
        self.sealer = Sealer(self.vault)

    def _shard_handle(self, msg: tuple) -> tuple:
        if msg[0] == "day":
            return ("day", msg[1], self._shard_day(msg[1], msg[2]))
        with self.timer("write open cases"):
            for track in sorted((t for tracks in self.due.values() for t in tracks), key=attrgetter("index")):
                self._write(track)
            self.due.clear()
        with self.timer("flush"):
            self.buffer.flush()
        if self.sink is not None:
            with self.timer("wait for the COPY writers"):
                self.sink.close()
        if self.handling is not None:
            self.report.rows["actions replayed"] = self.handling.actions
        if self.remote:
            self.report.seconds["process CPU (incl. its COPY threads)"] = time.process_time() - self.cpu_at_start
        return ("end", dict(self.report.seconds), dict(self.report.rows), self.report.repeats)

    def _shard_day(self, day: int, batch: list) -> list:
        """Register the shard's petitions of ``day`` at 09:00, play its handling due at 15:00; the returns
        (day due, registration index, key) its closures set off."""
        now = self.params.at(day)
        clock.current().set(now, frozen=True)
        for index, display_no, item in batch:
            self.slot = (index, display_no)
            self._one(item, day, now)
        if self.handling is None:
            return []
        with self.timer("replay handling (15:00)"):
            return self._handle_day(day)

    def _handle_day(self, day: int) -> list:
        at = self.params.at(day, 15)
        clock.current().set(at, frozen=True)
        handling, back = self.handling, []
        # only the cases with a step due today (advance would do nothing for the others), in registration order
        for track in sorted(self.due.pop(day, ()), key=attrgetter("index")):
            handling.advance(track, day, at)
            if not track.done:  # (a case that took its 12 steps and still has one due goes on tomorrow)
                self.due[max(track.due_day, day + 1)].append(track)
                continue
            person = track.item.petitioner
            if (track.closed_day is not None and person is not None and person.returns and track.dissatisfied
                    and not track.item.reflow):
                back.append((track.closed_day + RETURN_LAG, track.index, track.item.key))
            self._write(track)
        return back

    def _profiles(self) -> dict[str, str]:
        from shared.simulator.workload import unit_profiles

        return unit_profiles(self.params.seed, [u.id for u in self.snap.units])

    def _people(self, *, listing: bool) -> dict[str, tuple]:
        """Person id -> (username, unit id).  ``listing``: what ``GET /assign/api/v1/people`` gives the
        simulator's admin, every page (active people of an existing unit: Simulation.setup)."""
        from assign_svc.models import Person, Unit

        stmt = select(Person)
        if listing:
            stmt = select(Person).join(Unit, Unit.id == Person.unit_id).where(Person.active.is_(True))
        with self.runtimes["assign"].uow() as session:
            return {p.id: (p.username, p.unit_id) for p in session.scalars(stmt)}

    def _write(self, track) -> None:
        """Buffer every row of a case whose handling is over (parents first)."""
        add, t = self.buffer.add, self.tables
        add("intake", t.petition, track.petition)
        for service, table, row in track.rows:
            add(service, table, row)
        add("assign", t.case, vars(track.case))  # the case is done with: its namespace's own dict is the row
        if self.handling is not None:
            self.handling.finish_view(track)
            views = self.handling.stage_views(track)
        else:
            views = self._initial_stage_views(track)
        for s in track.stages:  # the same for each stage, less when supervise saw it open (in its view row now)
            row = vars(s)
            del row["opened_event_at"]
            row["id"] = new_id()
            add("assign", t.stage, row)
        view = track.view
        add("supervise", t.view, view)
        for row in views:
            add("supervise", t.stage_view, row)
        # The case's scorecard facts as ``facts.rebuild_all`` computes them from the rows just written (a
        # multi-row case from its scored stage rows), here in the shard instead of a pass over every case after it.
        stages = [(r["kind"], r["due_at"], r["closed_at"]) for r in views] if view["deadline_rows"] else None
        for row in self.case_facts(view, stages, self.zone):
            add("supervise", t.score_fact, row)
        self.buffer.flush_if_full()

    def _setup_services(self) -> None:
        from assign_svc import service as assign_service
        from assign_svc.models import Case, CaseEvent, CaseStage
        from assign_svc.stages import calendar_for
        from intake_svc.models import DisplaySequence, Petition, PetitionChange, Petitioner
        from intake_svc.pii import PiiVault
        from intake_svc.schemas import categories
        from intake_svc.service import category_version
        from supervise_svc.models import CaseStageView, CaseView, ScoreFact
        from supervise_svc.scores.facts import case_facts

        self.vault = PiiVault(self.settings)
        self.case_facts, self.zone = case_facts, ZoneInfo(self.settings.timezone)
        assign = self.runtimes["assign"]
        assign.extras["calendar"] = MemoCalendar(calendar_for(assign))
        self.categories = categories()
        self.category_version = category_version()
        self.tables = SimpleNamespace(petition=Petition.__table__, petitioner=Petitioner.__table__,
                                      change=PetitionChange.__table__, sequence=DisplaySequence.__table__,
                                      case=Case.__table__, stage=CaseStage.__table__, event=CaseEvent.__table__,
                                      view=CaseView.__table__, stage_view=CaseStageView.__table__,
                                      score_fact=ScoreFact.__table__)
        self.stage_columns = [c.name for c in CaseStage.__table__.columns]
        self.assign_service = assign_service
        self.sequences: dict[tuple[str, str], int] = {}
        self.by_person: dict[str, list] = defaultdict(list)  # id blind -> earlier petitions (candidate rows)
        self.stage_memo: dict[tuple, tuple] = {}
        self.route_memo: dict = {}
        self.policy_memo: dict = {}
        self.sealed: dict[str, str] = {}  # value -> Fernet token (a returning petitioner's values sealed once)
        self.no_detection = None

    def _one(self, item: Planned, day: int, now: datetime) -> None:
        from bench.fill.handling import Track

        timer = self.timer
        rows: list = []
        with timer("rows intake (incl. PII, detection)"):
            petition, event, found, candidate = self._intake(item, now, rows)
        with timer("rows assign (routing, deadlines)"):
            case, stages, event_row, names = self._assign(event, rows)
        with timer("rows supervise (read model)"):
            view = self._supervise(event, case, stages, names)
        # case.status_changed (待签收, by the routing) as intake applies it
        petition["case_status"], petition["case_updated_at"] = case.status, case.assigned_at
        petition["case_seq"] = 1  # the routing's case event (交办 / 转送 …) is the case's first
        rows.append(("intake", self.tables.change, {
            "petition_id": petition["id"], "at": now, "actor": event_row["actor_name"], "action": "case_status",
            "changes": {"from": "", "to": case.status, "reason": event_row["reason"]}}))
        track = Track(item=item, petition=petition, candidate=candidate, case=case, stages=stages, view=view, rows=rows)
        track.index = self.slot[0]
        self.report.repeats += bool(found.repeat_of)
        if self.handling is not None:
            self.handling.pick_up(track, day)
        if self.handling is None or track.done:
            self._write(track)
        else:
            self.due[track.due_day].append(track)

    # ------------------------------------------------------------------ intake

    def _intake(self, item: Planned, now: datetime, rows: list):
        from intake_svc.detection import MAX_CANDIDATES, Detection, detect
        from intake_svc.domain.rules import PURPOSES, is_group_visit, level_of_prefix
        from intake_svc.service import petition_row, registered_event

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
            recent = [r for r in reversed(earlier) if r[1] >= since][:MAX_CANDIDATES]
            if recent:
                found = detect(_Candidates([r[0] for r in recent]), fields=fields, id_blinds=[id_blind],
                               phone_blinds=[phone_blind], registrar_level=registrar_level,
                               window_days=settings.repeat_window_days)
        row = petition_row(fields, display_no=self.slot[1], found=found, petition_id=new_id())
        people, candidate = [], None
        if person is not None:
            people.append({"petition_id": row["id"], "seq": 0, "name": person.name,
                           "id_number_enc": self._seal(person.id_number), "id_blind": id_blind,
                           "phone_enc": self._seal(person.phone), "phone_blind": phone_blind,
                           "address_code": person.county, "address": "", "registered_at": now})
            candidate = SimpleNamespace(
                id=row["id"], display_no=row["display_no"], title=row["title"], request_text=row["request_text"],
                facts=row["facts"], region_code=row["region_code"], category_code=row["category_code"],
                classic_code=row["classic_code"], complained_party=row["complained_party"],
                case_status="待签收", case_resolved=False, case_final=False, registrar_level=registrar_level)
            self.by_person[id_blind].append((candidate, now))
        for p in people:
            rows.append(("intake", self.tables.petitioner, p))
        rows.append(("intake", self.tables.change, {
            "petition_id": row["id"], "at": now, "actor": row["registrar"], "action": "registered",
            "changes": {"display_no": row["display_no"], "detection": self._detection_dict(found)}}))
        event = registered_event(SimpleNamespace(**row, petitioners=[SimpleNamespace(name=p["name"]) for p in people]),
                                 found)
        return row, event, found, candidate

    def _seal(self, value: str) -> str:
        token = self.sealed.get(value)
        if token is None:
            token = self.sealed[value] = self.sealer.seal(value)
        return token

    def _detection_dict(self, found) -> dict:
        """``asdict(found)``; the no-repeat detection (most petitions) converted once."""
        if found.repeat_of:
            return asdict(found)
        if self.no_detection is None or self.no_detection[0] != found:
            self.no_detection = (found, asdict(found))
        return dict(self.no_detection[1])

    # ------------------------------------------------------------------ assign

    def _policies(self, case: SimpleNamespace, level: str | None) -> tuple:
        """The deadline policy ``select_policy`` picks for each step ``open_receipt_stages`` may open."""
        from assign_svc.domain.deadlines import NoPolicy, select_policy
        from assign_svc.stages import facts_of

        facts = facts_of(case)
        found = self.policy_memo.get((facts, level))
        if found is not None:
            return found
        out = []
        for step in ("acceptance_notice", "objection", "assigned", "handling"):
            try:
                out.append(select_policy(self.snap.policies, step, facts, level=level).id)
            except NoPolicy:
                out.append(None)
        if len(self.policy_memo) > 500_000:
            self.policy_memo.clear()
        found = self.policy_memo[(facts, level)] = tuple(out)
        return found

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

    def _assign(self, petition, rows: list):
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
            id=new_id(), petition_id=petition.petition_id, display_no=petition.display_no, unit_id=unit.id,
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
        case.row_version, case.previous_status, case.reviewed_by, case.closed_at, case.resolution = 1, None, None, None, None
        case.extension = case.opinion = case.service = case.evaluations = case.closure = None
        stages = [SimpleNamespace(**{**s, "case_id": case.id, "id": None}, opened_event_at=at) for s in stages]
        label = {"assign": "交办", "forward": "转送", "divert": "涉法涉诉分流"}[decision.mode]
        event_row = {"case_id": case.id, "seq": 1, "action": "assign", "label": label, "from_status": None,
                     "to_status": case.status, "actor_id": "system", "actor_name": "分办规则", "actor_role": "system",
                     "at": at, "reason": f"{decision.rule.name}（规则 {decision.rule.id}）",
                     "data": _jsonable({"unit_id": unit.id, "leader_id": case.leader_id, "mode": decision.mode})}
        rows.append(("assign", self.tables.event, event_row))
        leader_info = snap.people_by_id.get(case.leader_id) if case.leader_id else None
        names = (unit.name, leader_info.name if leader_info else None)
        return case, stages, event_row, names

    # ------------------------------------------------------------------ supervise

    def _supervise(self, petition, case, stages: list, names: tuple[str, str | None]) -> dict:
        """The case view after petition.registered, case.assigned and the 交办 case.action_recorded
        (``supervise_svc.service`` project_petition_registered / project_case_assigned / project_case_action);
        its stage rows are derived from the case's stages when written."""
        from supervise_svc.service import HEADLINE_KINDS

        flags = dict(petition.flags or {})
        view = {"petition_id": petition.petition_id, "display_no": petition.display_no,
                "region_code": petition.region_code, "category": petition.category,
                "registered_at": petition.registered_at, "request_text": petition.request_text, "flags": flags,
                "channel": petition.channel, "purpose": petition.purpose, "statutory_type": petition.statutory_type,
                "legal_litigation": bool(petition.legal_litigation), "group_visit": bool(petition.group_visit),
                "cross_level": bool(flags.get("cross_level")), "reflow": bool(flags.get("reflow")),
                "repeat_of": flags.get("repeat_of"),
                "case_id": case.id, "unit_id": case.unit_id, "unit_name": names[0],
                "assigned_at": case.assigned_at, "due_at": case.due_at, "deadline_basis": case.deadline_basis,
                "leader_id": case.leader_id, "leader_name": names[1], "mode": case.mode,
                "in_clock": bool(case.in_clock), "status": "assigned", "case_state": case.status,
                "last_event_at": case.assigned_at, "last_event_seq": 1,  # the routing's action (seq 1)
                # what the handling's actions fold in (project_case_action), as a new view holds them
                "accepted_at": None, "opinion_at": None, "opinion_outcome": None, "truth": None, "served_at": None,
                "evaluation_grade": None, "evaluated_at": None, "evaluation_expired": False,
                "closure_submitted_at": None, "closure_perfunctory": False, "closure_failed": [], "closed_at": None,
                "resolution": None, "ceased": False, "commitments": [], "commitments_due_at": None, "cycle": 1}
        for s in stages:
            due = None if s.paused_at is not None else s.due_at
            if s.kind in HEADLINE_KINDS and due is not None:
                view["due_at"], view["deadline_basis"] = due, s.basis or view["deadline_basis"]
        return view

    def _initial_stage_views(self, track) -> list[dict]:
        """supervise_case_stages as the 交办 leaves them (no handling replayed)."""
        from supervise_svc.service import SCORED_SLOTS, deadline_columns

        view, case = track.view, track.case
        view.update(deadline_columns((s.kind, s.due_at, None) for s in track.stages))
        return [{"case_id": case.id, "petition_id": case.petition_id, "unit_id": case.unit_id,
                 "region_code": case.region_code, "kind": s.kind, "opened_at": case.assigned_at,
                 "due_at": None if s.paused_at is not None else s.due_at, "warn_at": s.warn_at,
                 "paused": s.paused_at is not None, "basis": s.basis or "", "policy": f"{s.policy_code}@{s.policy_version}",
                 "closed_at": None, "overdue_found_at": None,
                 "deadline_rows": bool(view["deadline_rows"]) and s.kind in SCORED_SLOTS} for s in track.stages]

    # ------------------------------------------------------------------ after loading

    def analyze(self) -> None:
        """ANALYZE the SQLite databases (PostgreSQL's are vacuumed and analyzed by ``deferred_constraints``)."""
        from sqlalchemy import text

        for svc in self.write:
            engine = self.runtimes[svc].engine
            if engine.dialect.name != "postgresql":
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
         progress: Callable[[int], None] | None = None, replay: bool = True,
         write: tuple[str, ...] = SERVICES, workers: int | None = None) -> FillReport:
    """Fill the intake, assign and supervise databases of ``settings``; returns the report (timings).
    ``replay=False``: every case as routing leaves it (待签收, receipt stages open).  ``write``: the services
    whose tables are filled (the others' databases are only migrated and bootstrapped: routing and
    deadlines read assign's rules and calendar).  ``workers``: shards in worker processes (default: ``WORKERS``
    when every filled database is PostgreSQL, else one shard in this process)."""
    job = BulkFill(settings, params, chunk=chunk, progress=progress, replay=replay, write=write, workers=workers)
    try:
        return job.run()
    finally:
        job.close()

