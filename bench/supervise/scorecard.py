"""Bench: one month's 三率三色 scorecard over a large read model, beside the bare GROUP BY.

    .venv/bin/python -m bench.supervise.scorecard [--cases 1000000] [--runs 3] [--seed 1]
                                                  [--backend sqlite|postgres|both] [--month 2026-06]
    .venv/bin/python -m bench.supervise.scorecard --synthetic [--units 3000] …   # the former synthetic fill

Fills ``--cases`` cases over 2026 with the simulator's bulk fill (``bench.fill``, handling replayed: the
workload's petitions registered, routed and handled as the slow simulation drives them — signed, accepted,
extended, answered, served, evaluated, closed on time or late, returns 回流; the demo directory of 南阳市),
so supervise's read model (case views with their deadline slots, stage rows) is what the projection holds
after a year.  ``--synthetic``: the former fill instead (executemany on SQLite, COPY on PostgreSQL;
``--units`` directory units, 30 counties with their townships, and random cases with ~2.9 stage rows each:
a quarter 交办 with an assigned deadline too, 3 % rerouted with a second 受理告知, the deadline slots and
the ``deadline_rows`` flag of multi-row cases on the case and on its scored stage rows).  Both fills end with
the scorecard facts the projection keeps (``supervise_svc.scores.facts.rebuild_all``: one narrow row per
case and local month in which it counts, written in the order the cases last changed, then VACUUM ANALYZE
as autovacuum would).  Then, in the same run, times (median of ``--runs`` interleaved rounds):

* ``scorecard``: ``compute_month`` for ``--month`` (ONE GROUP BY over the month's facts, the per-unit
  rates, ranks, colours, the 3,000 rows written), rolled back after each run;
* ``scorecard_slots``: the same with session 3's counting (``month_counts_slots``: the case views filtered
  on the month's timestamps, their deadline slots, plus the multi-row cases' stage rows);
* ``scorecard_joined``: the same with the first counting (every deadline from the stage rows joined
  to their cases, ``month_counts_joined``); all three must give the same rows;
* ``raw_counts``: the scorecard's counting (the facts GROUP BY) as raw SQL on a bare connection;
* ``aggregates``: the counting alone (``month_counts``);
* ``bare``: one raw SQL ``GROUP BY substr(region_code, 1, 9)`` over the case table for the month's
  registrations (COUNT and two conditional sums, nothing else) — the floor;
* ``bare_stages``: the same single GROUP BY over the stages due in the month (the other table the
  former counting had to read);

and prints the ratio scorecard / bare (target: within 3×) and scorecard / (bare + bare_stages).
"""
from __future__ import annotations

import argparse
import contextlib
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from sqlalchemy import Boolean, Integer, text
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON

from shared.db import create_db_engine
from supervise_svc.models import Base, CaseStageView, CaseView, DirectoryUnit, ScoreFact
from supervise_svc.scores import facts
from supervise_svc.scores import compute as compute_module
from supervise_svc.scores.aggregate import month_counts, month_counts_joined, month_counts_slots
from supervise_svc.scores.compute import compute_month
from supervise_svc.service import SCORED_SLOTS, deadline_columns
from supervise_svc.scores.domain import load_settings, month_bounds

TZ = "Asia/Shanghai"
YEAR_START = datetime(2025, 12, 31, 16, tzinfo=timezone.utc)  # 2026-01-01 00:00 Beijing
CHUNK = 50_000

CITIES = ("4113", "4114", "4115")


def directory(units: int) -> tuple[list[dict], list[str], list[str]]:
    """30 counties (10 per city) and ``units - 30`` townships spread over them; (rows, counties, townships)."""
    counties = [f"{c}{i:02d}" for c in CITIES for i in range(21, 31)]
    per = max(1, (units - len(counties)) // len(counties))
    rows, towns = [], []
    rng = random.Random(7)
    for code in counties:
        rows.append(dict(id=f"{code}-gov", name=f"{code}县人民政府", kind="government", level="county",
                         region_code=code, parent_id=None, peer_group="县市区", active=True, population=rng.randint(300, 1500) * 1000))
    extra = units - len(counties) - per * len(counties)
    for n, code in enumerate(counties):
        for i in range(1, per + 1 + (1 if n < extra else 0)):
            tid = f"{code}{i:03d}000"
            towns.append(tid[:9])
            rows.append(dict(id=tid, name=f"{code}第{i}乡镇", kind="township", level="township", region_code=tid,
                             parent_id=f"{code}-gov", peer_group=f"{code}乡镇", active=True, population=rng.randint(10, 80) * 1000))
    return rows, counties, towns


def column_defaults(table) -> list[tuple[str, object]]:
    """(column, value when not given): NULL, or a neutral value for NOT NULL columns; autoincrement ids left out."""
    out = []
    for col in table.columns:
        if col.primary_key and col.autoincrement is True:
            continue
        if col.nullable:
            default = None
        elif isinstance(col.type, Boolean):
            default = False
        elif isinstance(col.type, Integer):
            default = 1 if col.name == "cycle" else 0
        elif isinstance(col.type, JSON):
            default = "[]" if col.name in ("closure_failed", "commitments") else "{}"
        else:
            default = ""
        out.append((col.name, default))
    return out


CASE_KEYS = ("petition_id", "display_no", "region_code", "category", "registered_at", "channel", "statutory_type",
             "legal_litigation", "cross_level", "repeat_of", "case_id", "unit_id", "status", "cycle", "accepted_at",
             "closed_at", "resolution", "truth", "evaluated_at", "evaluation_grade", "evaluation_expired",
             "acceptance_due_at", "acceptance_closed_at", "handling_due_at", "handling_closed_at", "assigned_due_at",
             "assigned_closed_at", "evaluation_due_at", "deadline_rows", "last_event_at")
SLOT_KEYS = CASE_KEYS[-9:-2]
STAGE_KEYS = ("case_id", "petition_id", "unit_id", "region_code", "kind", "opened_at", "due_at", "closed_at",
              "deadline_rows")


class Stamps:
    """minutes since 2026-01-01 00:00 Beijing -> the stored text of that instant (SQLite or COPY form)."""

    def __init__(self, sqlite: bool) -> None:
        days = [(YEAR_START + timedelta(days=d)) for d in range(500)]
        self.days = [d.strftime("%Y-%m-%d ") for d in days]
        self.clock = [f"{(16 + m // 60) % 24:02d}:{m % 60:02d}:00" + (".000000" if sqlite else "+00")
                      for m in range(1440)]
        self.sqlite = sqlite

    def __call__(self, m: int | None) -> str | None:
        if m is None:
            return None
        # YEAR_START is 16:00 UTC: minute m falls on day (m + 960) // 1440 after 2025-12-31.
        return self.days[(m + 960) // 1440] + self.clock[m % 1440]


def cases(n: int, counties: list[str], towns: list[str], stamp: Stamps,
          seed: int = 11) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """Chunks of (case rows, stage rows) as tuples in CASE_KEYS / STAGE_KEYS order: a realistic mix over 2026."""
    rng = random.Random(seed)
    day = 1440
    yes, no = (1, 0) if stamp.sqlite else (True, False)
    types = ("申诉求决类", "检举控告类", "建议意见类")
    batch_c, batch_s = [], []
    for k in range(n):
        if rng.random() < 0.1:
            region = rng.choice(counties)
        else:
            town = rng.choice(towns)
            region = town + (f"{rng.randint(1, 30):03d}" if rng.random() < 0.3 else "000")
        reg = rng.randrange(0, 365 * day)
        r = rng.random()
        stype = types[0] if r < 0.6 else types[1] if r < 0.85 else types[2]
        visit = rng.random() < 0.2
        case_id, petition_id = f"c{k:09d}", f"p{k:09d}"
        unit_id = region if len(region) == 12 else f"{region}-gov"
        accept_due = reg + 15 * day
        accepted = accept_due - rng.randrange(1, 10 * day) if rng.random() < 0.9 else accept_due + rng.randrange(1, 5 * day)
        handle_due = accepted + 60 * day
        closed = resolution = truth = evaluated = grade = None
        expired = no
        stages = [("acceptance_notice", reg, accept_due, accepted)]
        if rng.random() < 0.8:
            closed = handle_due - rng.randrange(0, 50 * day) if rng.random() < 0.85 else handle_due + rng.randrange(1, 20 * day)
            resolution = "resolved" if rng.random() < 0.7 else "replied"
            if stype != types[2] and rng.random() < 0.6:
                truth = ("属实", "部分属实", "不属实")[rng.randrange(3)]
            r = rng.random()
            if r < 0.6:
                evaluated = closed + rng.randrange(1, 30 * day)
                g = rng.random()
                grade = "满意" if g < 0.6 else "基本满意" if g < 0.9 else "不满意"
                stages.append(("evaluation", closed, closed + 30 * day, evaluated))
            elif r < 0.8:
                expired = yes
                stages.append(("evaluation", closed, closed + 30 * day, None))
        stages.insert(1, ("handling", accepted, handle_due, closed))
        if rng.random() < 0.25:  # 交办: an assigned deadline beside the handling period
            stages.insert(2, ("assigned", reg, accepted + rng.randrange(20, 60) * day, closed))
        if rng.random() < 0.03:  # rerouted once: a first 受理告知 closed by the reroute
            stages.insert(0, ("acceptance_notice", reg, accept_due, reg + rng.randrange(day // 2, 3 * day)))
        slots = deadline_columns((kind, due, done) for kind, _, due, done in stages)
        batch_c.append((petition_id, f"{region[:6]}{k:012d}", region, "城乡建设", stamp(reg),
                        "来访" if visit else ("网上信访", "来信", "来电")[rng.randrange(3)], stype,
                        yes if rng.random() < 0.05 else no, yes if visit and rng.random() < 0.1 else no,
                        f"p{rng.randrange(max(k, 1)):09d}" if rng.random() < 0.15 else None, case_id, unit_id,
                        "closed" if closed is not None else "assigned", 1, stamp(accepted), stamp(closed), resolution,
                        truth, stamp(evaluated), grade, expired, *(stamp(slots[k]) for k in SLOT_KEYS),
                        yes if slots["deadline_rows"] else no,
                        stamp(max(m for m in (reg, accepted, closed, evaluated) if m is not None))))
        for kind, opened, due, done in stages:  # a multi-row case's scored rows carry the flag, as projected
            flagged = yes if slots["deadline_rows"] and kind in SCORED_SLOTS else no
            batch_s.append((case_id, petition_id, unit_id, region, kind, stamp(opened), stamp(due), stamp(done),
                            flagged))
        if len(batch_c) >= CHUNK:
            yield batch_c, batch_s
            batch_c, batch_s = [], []
    if batch_c:
        yield batch_c, batch_s


def _sqlite_value(value):
    if isinstance(value, datetime):  # SQLAlchemy's SQLite storage format for UTC datetimes
        return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def bulk_insert(engine, table, keys: tuple[str, ...], rows: list[tuple]) -> None:
    """executemany (SQLite) or COPY (PostgreSQL) of ``rows`` (tuples in ``keys`` order); the table's other
    NOT NULL columns get neutral constants."""
    tail = [(name, default) for name, default in column_defaults(table) if name not in keys and default is not None]
    sqlite = engine.dialect.name == "sqlite"
    consts = tuple(int(d) if sqlite and isinstance(d, bool) else d for _, d in tail)
    cols = [*keys, *(name for name, _ in tail)]
    raw = engine.raw_connection()
    try:
        if sqlite:
            cur = raw.cursor()
            cur.execute("BEGIN")
            cur.executemany(f"INSERT INTO {table.name} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            [row + consts for row in rows])
            cur.execute("COMMIT")
        else:
            with raw.cursor() as cur:
                with cur.copy(f"COPY {table.name} ({', '.join(cols)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row + consts)
            raw.commit()
    finally:
        raw.close()


def load(engine, n_cases: int, n_units: int) -> float:
    Base.metadata.create_all(engine)
    t0 = time.perf_counter()
    units, counties, towns = directory(n_units)
    keys = tuple(units[0])
    bulk_insert(engine, DirectoryUnit.__table__, keys, [tuple(u[k] for k in keys) for u in units])
    done = 0
    for batch_c, batch_s in cases(n_cases, counties, towns, Stamps(engine.dialect.name == "sqlite")):
        bulk_insert(engine, CaseView.__table__, CASE_KEYS, batch_c)
        bulk_insert(engine, CaseStageView.__table__, STAGE_KEYS, batch_s)
        done += len(batch_c)
        print(f"\r  loaded {done:,} cases", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    build_facts(engine)
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    return time.perf_counter() - t0


def build_facts(engine) -> None:
    """The scorecard facts the projection would have kept (``facts.rebuild_all``: in the order the cases
    last changed, as the projection rewrites a case's facts on each change)."""
    Base.metadata.create_all(engine, tables=[ScoreFact.__table__])
    t0 = time.perf_counter()
    with Session(engine) as s:
        n = facts.rebuild_all(s)
        s.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:  # as autovacuum would
        conn.execute(text(("VACUUM " if engine.dialect.name == "postgresql" else "") + "ANALYZE supervise_score_facts"))
    print(f"  scorecard facts: {n:,} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


BARE = ("SELECT substr(region_code, 1, 9) AS prefix, COUNT(*) AS n, "
        "SUM(CASE WHEN repeat_of IS NOT NULL THEN 1 ELSE 0 END) AS repeats, "
        "SUM(CASE WHEN channel = '来访' THEN 1 ELSE 0 END) AS visits "
        "FROM case_views WHERE NOT legal_litigation AND registered_at >= :start AND registered_at < :end "
        "GROUP BY substr(region_code, 1, 9)")
BARE_STAGES = ("SELECT substr(region_code, 1, 9) AS prefix, COUNT(*) AS n, "
               "SUM(CASE WHEN closed_at > due_at THEN 1 ELSE 0 END) AS late "
               "FROM supervise_case_stages WHERE due_at >= :start AND due_at < :end "
               "GROUP BY substr(region_code, 1, 9)")


def interleaved(contenders: dict, runs: int) -> dict:
    """Median seconds of each contender over ``runs`` rounds; each round runs every contender once, so
    on a noisy shared machine they see the same load."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    results: dict[str, object] = {}
    for _ in range(runs):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    out = {name: statistics.median(values) for name, values in times.items()}
    out.update({f"{name}_result": value for name, value in results.items()})
    return out


def measure(engine, month: str, runs: int) -> dict:
    settings = load_settings()
    start, end = month_bounds(month, TZ)
    now = datetime(2027, 1, 10, tzinfo=timezone.utc)
    sqlite = engine.dialect.name == "sqlite"
    bind = {"start": _sqlite_value(start), "end": _sqlite_value(end)} if sqlite else {"start": start, "end": end}

    def bare():
        with engine.connect() as conn:
            return len(conn.execute(text(BARE), bind).all())

    def bare_stages():
        with engine.connect() as conn:
            return len(conn.execute(text(BARE_STAGES), bind).all())

    # The scorecard's own case counting (every count, the same WHERE) as one GROUP BY on a bare connection
    # (no session, no Python after the fetch): the floor of the counting itself, without the application.
    raw_stmt, _ = facts.count_statement(int(month.replace("-", "")), end)

    def raw_counts():
        with engine.connect() as conn:
            return len(conn.execute(raw_stmt).all())

    def aggregates():
        with Session(engine) as s:
            return len(month_counts(s, start, end, end))

    def scorecard():
        with Session(engine) as s:
            run = compute_month(s, month=month, settings=settings, tz=TZ, now=now)
            n = s.execute(text("SELECT COUNT(*) FROM scorecard_rows WHERE month = :m"), {"m": run.month}).scalar()
            key = compute_module.month_counts.__name__
            if key not in results:  # read the rows back once (for the equality check), not in every timed round
                results[key] = {r[0]: r[1] for r in s.execute(
                    text("SELECT unit_id, counts FROM scorecard_rows WHERE month = :m"), {"m": run.month})}
            s.rollback()
            return n

    def scorecard_joined():
        """The first way: the deadline counts from the stage rows joined to their cases, every case."""
        return former(month_counts_joined)

    def scorecard_slots():
        """The former way: the case views filtered on the month's timestamps (deadline slots) + multi-row stages."""
        return former(month_counts_slots)

    def former(counting):
        compute_module.month_counts = counting
        try:
            return scorecard()
        finally:
            compute_module.month_counts = month_counts

    results: dict[str, dict] = {}
    bare(), bare_stages()  # warm the cache for every contender alike
    Base.metadata.create_all(engine, tables=[ScoreFact.__table__])
    with Session(engine) as s:
        if not s.scalar(text("SELECT COUNT(*) FROM supervise_score_facts WHERE month = :m"),
                        {"m": int(month.replace("-", ""))}):
            build_facts(engine)
    out = interleaved({"bare": bare, "bare_stages": bare_stages, "raw_counts": raw_counts, "aggregates": aggregates,
                       "scorecard_joined": scorecard_joined, "scorecard_slots": scorecard_slots,
                       "scorecard": scorecard}, runs)
    for other in ("month_counts_joined", "month_counts_slots"):
        if results["month_counts"] != results[other]:
            raise SystemExit(f"the scorecard from the facts and the one from {other} differ")
    out["same"] = len(results["month_counts"])
    out["ratio"] = out["scorecard"] / out["bare"]
    out["ratio_joined"] = out["scorecard_joined"] / out["bare"]
    out["ratio_slots"] = out["scorecard_slots"] / out["bare"]
    out["ratio_both"] = out["scorecard"] / (out["bare"] + out["bare_stages"])
    out["ratio_raw_counts"] = out["scorecard"] / out["raw_counts"]
    return out


@contextlib.contextmanager
def database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="xfb-scorecard-") as tmp:
            yield f"sqlite:///{Path(tmp) / 'supervise.db'}"
    else:
        from bench.common import pg_databases

        with pg_databases() as urls:
            yield urls["supervise"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--month", default="2026-06")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--reuse", metavar="URL", help="measure an already filled database (no fill, nothing dropped)")
    parser.add_argument("--synthetic", action="store_true", help="the former synthetic fill instead of the bulk fill")
    parser.add_argument("--seed", type=int, default=1, help="bulk fill: the simulator's seed")
    args = parser.parse_args(argv)
    if args.reuse:
        engine = create_db_engine(args.reuse)
        r = measure(engine, args.month, args.runs)
        engine.dispose()
        report(engine.dialect.name, args, r, loaded=None)
        return 0
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    for backend in backends:
        if not args.synthetic:
            r, loaded = bulk_measure(backend, args)
            report(backend, args, r, loaded)
            continue
        with database(backend) as url:
            engine = create_db_engine(url)
            print(f"{backend}: filling {args.units:,} units and {args.cases:,} cases …", file=sys.stderr)
            loaded = load(engine, args.cases, args.units)
            r = measure(engine, args.month, args.runs)
            engine.dispose()
        report(backend, args, r, loaded)
    return 0


def bulk_measure(backend: str, args) -> tuple[dict, float]:
    """Bulk-fill intake, assign and supervise (scratch databases, dropped after), measure supervise's."""
    from bench.fill.__main__ import bench_settings, pg_databases
    from bench.fill.core import FillParams, fill

    with tempfile.TemporaryDirectory(prefix="xfb-scorecard-") as tmp:
        settings = bench_settings(backend=backend, data_dir=Path(tmp), tag="scorecard")
        try:
            print(f"{backend}: bulk-filling {args.cases:,} cases (seed {args.seed}, handling replayed) …",
                  file=sys.stderr)
            t0 = time.perf_counter()
            done = fill(settings, FillParams.for_cases(args.cases, seed=args.seed))
            loaded = time.perf_counter() - t0
            args.units = None
            print(f"  {done.petitions:,} cases over {done.days} days in {loaded:.1f} s", file=sys.stderr)
            engine = create_db_engine(settings.database_url("supervise"))
            try:
                return measure(engine, args.month, args.runs), loaded
            finally:
                engine.dispose()
        finally:
            if backend == "postgres":
                pg_databases("scorecard", create=False)


def report(backend: str, args, r: dict, loaded: float | None) -> None:
    """Print one backend's figures."""
    fill = f"load={loaded:.1f}s" if loaded is not None else "reused database"
    units = f"units={args.units:,}" if args.units else "bulk fill (demo directory)"
    print(f"{backend:9s} cases={args.cases:,} {units} {fill}  month {args.month}, "
          f"median of {args.runs}:")
    print(f"  bare GROUP BY cases  {r['bare'] * 1000:9.1f} ms  ({r['bare_result']} groups)")
    print(f"  bare GROUP BY stages {r['bare_stages'] * 1000:9.1f} ms  ({r['bare_stages_result']} groups)")
    print(f"  raw SQL of the scorecard's counting (facts) {r['raw_counts'] * 1000:6.1f} ms  ({r['raw_counts_result']} groups)")
    print(f"  counting (month_counts) {r['aggregates'] * 1000:6.1f} ms  ({r['aggregates_result']} groups)")
    print(f"  scorecard (compute)  {r['scorecard'] * 1000:9.1f} ms  ({r['scorecard_result']} rows)")
    print(f"  scorecard, case slots {r['scorecard_slots'] * 1000:8.1f} ms  (session 3's way)")
    print(f"  scorecard, former join {r['scorecard_joined'] * 1000:7.1f} ms  (same counts for {r['same']} units)")
    print(f"  ratio scorecard/bare {r['ratio']:9.2f}x  (target ≤ 3x; case slots {r['ratio_slots']:.2f}x, "
          f"former join {r['ratio_joined']:.2f}x)")
    print(f"  ratio scorecard/(bare cases + bare stages) {r['ratio_both']:.2f}x")
    print(f"  ratio scorecard/raw SQL of its counting {r['ratio_raw_counts']:.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
