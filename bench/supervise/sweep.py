"""Bench: the overdue sweep (check 1) over 1,000,000 open cases with 1,000 newly due.

Fills ``--rows`` + ``--due`` cases with the simulator's bulk fill (``bench.fill``: the workload's petitions
registered and routed by the services' own functions into intake, assign and supervise — every case open
as routing leaves it, 受理告知 / 异议 / 交办 stages with their real deadlines; ``--replay`` also plays the
units' handling, so a third is closed), marks every stage already past due at the end of the filled
period as found by the sweeps of that period (``mark_found_before``), then makes exactly ``--due`` open
交办 stages (one per case) fall due five minutes before "now".  ``--synthetic``: the former fill instead
(case view + one open stage each over the demo directory's handling units, owned by the unit's 分管副职).
Then times, in the same run:

(a) the raw SQL selection of the due rows through the partial index;
(b) one full overdue sweep that opens ``--due`` findings with their notices (history, escalations, notice
    rows, outbox rows: ``notice.requested`` + ``finding.changed``), median of ``--repeat`` runs, the sweep's
    effects undone between runs;
(c) the sweep when the due rows open nothing (claim + mark only);
and prints the detection latency: a condition becomes a finding at the first sweep after its due, i.e.
within the sweep interval (scheduler, ``sweep_interval_seconds``) + the sweep time.

    .venv/bin/python bench/supervise/sweep.py                         # SQLite, 1,000,000 + 1,000
    .venv/bin/python bench/supervise/sweep.py --backend postgres      # a scratch database on 127.0.0.1:5432
    .venv/bin/python bench/supervise/sweep.py --rows 100000 --path row_by_row   # the per-row path (before)
    .venv/bin/python bench/supervise/sweep.py --database-url sqlite:////tmp/sv.db --reuse --statements --synthetic
        # keep the filled cases for the next run; time each SQL statement and the commits of one more sweep
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import create_engine, delete, func, insert, select, text, update

START = datetime(2026, 3, 2, 2, tzinfo=timezone.utc)
CHUNK = 20_000
DIRECTORY = Path(__file__).resolve().parents[2] / "assign_svc" / "data" / "directory.yaml"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_DB = "xinfang_bench_supervise"


def scratch_postgres() -> str:
    engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_DB}):
            conn.execute(text(f'CREATE DATABASE "{PG_DB}"'))
    engine.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DB


def build(database_url: str | None, *, reuse: bool = False):
    from shared import clock
    from shared.config import Settings
    from supervise_svc.app import build_runtime

    data_dir = Path(tempfile.mkdtemp(prefix="bench-supervise-"))
    settings = Settings(data_dir=data_dir, secret_key="bench-secret-key-0123456789", clock_control=True,
                        database_urls={"supervise": database_url} if database_url else {})
    runtime = build_runtime(settings, broker=StubBroker())
    if not reuse:
        runtime.metadata.drop_all(runtime.engine)
    runtime.create_schema()
    clock.current().set(START, frozen=True)
    return runtime


def load_directory(runtime) -> list[dict]:
    """Copy the demo directory into supervise's tables; returns the handling units with their 分管副职."""
    from supervise_svc.models import DirectoryPerson, DirectoryUnit

    data = yaml.safe_load(DIRECTORY.read_text(encoding="utf-8"))
    units = [{"id": u["id"], "name": u["name"], "kind": u["kind"], "level": u["level"],
              "region_code": str(u["region_code"]), "parent_id": u.get("parent"), "peer_group": u.get("peer_group"),
              "population": u.get("population"), "active": True, "version": 1} for u in data["units"]]
    people = [{"id": p["id"], "unit_id": p["unit"], "name": p["name"], "post": p["post"], "title": p.get("title", ""),
               "leader": bool(p.get("leader")), "active": True, "version": 1} for p in data["people"]]
    with runtime.engine.begin() as conn:
        conn.execute(insert(DirectoryUnit), units)
        conn.execute(insert(DirectoryPerson), people)
    deputy = {p["unit_id"]: p["id"] for p in people if p["post"] == "deputy"}
    return [{**u, "leader_id": deputy.get(u["id"])} for u in units
            if u["kind"] not in ("petition_dept", "discipline", "government")]


VIEW_COLS = ("petition_id", "display_no", "region_code", "category", "flags", "status", "case_id", "unit_id",
             "unit_name", "leader_id", "cycle", "commitments", "closure_failed", "legal_litigation", "cross_level",
             "group_visit", "reflow", "in_clock", "evaluation_expired", "closure_perfunctory", "ceased",
             "reflow_checked", "registered_at", "assigned_at")
STAGE_COLS = ("case_id", "petition_id", "unit_id", "region_code", "kind", "opened_at", "due_at", "basis", "policy",
              "paused")


def rows_of(i: int, due: int, units: list[dict]) -> tuple[dict, dict]:
    unit = units[i % len(units)]
    opened = START - timedelta(days=60)
    due_at = START - timedelta(minutes=5) - timedelta(seconds=i) if i < due else START + timedelta(days=30, seconds=i)
    view = {"petition_id": f"p{i}", "display_no": f"{unit['region_code'][:6]}{i:012d}",
            "region_code": unit["region_code"], "category": "城乡建设", "flags": {}, "status": "assigned",
            "case_id": f"c{i}", "unit_id": unit["id"], "unit_name": unit["name"], "leader_id": unit["leader_id"],
            "cycle": 1, "commitments": [], "closure_failed": [], "legal_litigation": False, "cross_level": False,
            "group_visit": False, "reflow": False, "in_clock": True, "evaluation_expired": False,
            "closure_perfunctory": False, "ceased": False, "reflow_checked": False, "registered_at": opened,
            "assigned_at": opened}
    stage = {"case_id": f"c{i}", "petition_id": f"p{i}", "unit_id": unit["id"], "region_code": unit["region_code"],
             "kind": "handling", "opened_at": opened, "due_at": due_at, "basis": "《信访工作条例》第三十四条",
             "policy": "handling@1", "paused": False}
    return view, stage


def fill(runtime, rows: int, due: int, units: list[dict]) -> None:
    from supervise_svc.models import CaseStageView, CaseView

    total = rows + due
    # Columns of the models not filled here get their scalar defaults (COPY does not apply Python defaults).
    view_extra = {c.name: c.default.arg for c in CaseView.__table__.columns
                  if c.name not in VIEW_COLS and c.default is not None and c.default.is_scalar}
    stage_extra = {c.name: c.default.arg for c in CaseStageView.__table__.columns
                   if c.name not in STAGE_COLS and c.default is not None and c.default.is_scalar}
    view_cols, stage_cols = (*VIEW_COLS, *view_extra), (*STAGE_COLS, *stage_extra)
    if runtime.engine.dialect.name == "postgresql":
        raw = runtime.engine.raw_connection()
        try:
            cur = raw.driver_connection.cursor()
            with cur.copy(f"COPY case_views ({', '.join(view_cols)}) FROM STDIN") as vcopy:
                for i in range(total):
                    view, _ = rows_of(i, due, units)
                    view.update(view_extra)
                    vcopy.write_row([json.dumps(view[c]) if c in ("flags", "commitments", "closure_failed")
                                     else view[c] for c in view_cols])
            with cur.copy(f"COPY supervise_case_stages ({', '.join(stage_cols)}) FROM STDIN") as scopy:
                for i in range(total):
                    _, stage = rows_of(i, due, units)
                    stage.update(stage_extra)
                    scopy.write_row([stage[c] for c in stage_cols])
            raw.commit()
        finally:
            raw.close()
        with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE case_views"))
            conn.execute(text("VACUUM ANALYZE supervise_case_stages"))
        return
    with runtime.engine.begin() as conn:
        for lo in range(0, total, CHUNK):
            pairs = [rows_of(i, due, units) for i in range(lo, min(lo + CHUNK, total))]
            conn.execute(insert(CaseView), [v for v, _ in pairs])
            conn.execute(insert(CaseStageView), [s for _, s in pairs])
    with runtime.engine.begin() as conn:
        conn.execute(text("ANALYZE"))


#: The stage rows made due (bulk fill): only these are reset between runs and flipped for the bare sweep.
CHOSEN: list[str] = []


def _chosen(table):
    """The made-due stage rows: ``CHOSEN`` (bulk fill), else every row due by START (synthetic fill)."""
    return table.id.in_(CHOSEN) if CHOSEN else table.due_at <= START


def reset(runtime) -> None:
    from supervise_svc import models as m

    with runtime.engine.begin() as conn:
        conn.execute(update(m.CaseStageView).where(_chosen(m.CaseStageView)).values(overdue_found_at=None))
        for model in (m.Finding, m.FindingEvent, m.Escalation, m.FindingNotice, m.Counter, runtime.outbox_model):
            conn.execute(delete(model))


def raw_select(runtime) -> tuple[float, int]:
    sql = text("SELECT id FROM supervise_case_stages WHERE closed_at IS NULL AND overdue_found_at IS NULL "
               "AND due_at IS NOT NULL AND due_at <= :now ORDER BY due_at")
    now = START.replace(tzinfo=None) if runtime.engine.dialect.name == "sqlite" else START
    with runtime.engine.connect() as conn:
        started = time.perf_counter()
        n = len(conn.execute(sql, {"now": now}).all())
        return time.perf_counter() - started, n


def counts(runtime) -> dict[str, int]:
    from supervise_svc import models as m

    with runtime.engine.connect() as conn:
        return {name: conn.scalar(select(func.count()).select_from(model)) for name, model in (
            ("findings", m.Finding), ("history", m.FindingEvent), ("escalations", m.Escalation),
            ("notices", m.FindingNotice), ("outbox", runtime.outbox_model))}


def statement_timing(runtime) -> None:
    """One more sweep (effects undone first) with each SQL statement timed at the cursor (count, total ms,
    rows in the executemany batches) and the commits timed: where the sweep's time goes."""
    from collections import defaultdict

    from sqlalchemy import event

    from supervise_svc import checks

    stats: dict[str, list] = defaultdict(lambda: [0, 0.0, 0])
    commits: list[float] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("started", []).append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        entry = stats[" ".join(statement.split())[:110]]
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info["started"].pop()
        entry[2] += len(parameters) if executemany else 1

    def before_commit(session):
        session.info["commit_started"] = time.perf_counter()

    def after_commit(session):
        if "commit_started" in session.info:
            commits.append(time.perf_counter() - session.info.pop("commit_started"))

    reset(runtime)
    event.listen(runtime.engine, "before_cursor_execute", before)
    event.listen(runtime.engine, "after_cursor_execute", after)
    event.listen(runtime.sessions, "before_commit", before_commit)
    event.listen(runtime.sessions, "after_commit", after_commit)
    try:
        started = time.perf_counter()
        checks.overdue_sweep(runtime)
        total = time.perf_counter() - started
    finally:
        event.remove(runtime.engine, "before_cursor_execute", before)
        event.remove(runtime.engine, "after_cursor_execute", after)
        event.remove(runtime.sessions, "before_commit", before_commit)
        event.remove(runtime.sessions, "after_commit", after_commit)
    in_sql = sum(v[1] for v in stats.values())
    print(f"statement timing of one sweep: {total * 1000:.0f} ms in all, {in_sql * 1000:.0f} ms in "
          f"{sum(v[0] for v in stats.values())} cursor executions, commits {sum(commits) * 1000:.0f} ms, "
          f"the rest (Python) {(total - in_sql - sum(commits)) * 1000:.0f} ms")
    for statement, (n, seconds, rows) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:14]:
        print(f"  {seconds * 1000:8.1f} ms  x{n:<4} rows {rows:<6} {statement}")


def main() -> None:
    from supervise_svc import checks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="open cases whose stage is not yet due")
    parser.add_argument("--due", type=int, default=1_000, help="cases whose stage fell due")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database-url", default=None, help="supervise database (default: per --backend)")
    parser.add_argument("--path", choices=("set_based", "row_by_row"), default="set_based",
                        help="row_by_row: the per-row fallback path (the sweep as it was before)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the cases of an earlier run of the same size in --database-url (no refill)")
    parser.add_argument("--statements", action="store_true",
                        help="then time each SQL statement and the commit of one more sweep")
    parser.add_argument("--synthetic", action="store_true",
                        help="the former synthetic fill (views + one stage each) instead of the bulk fill")
    parser.add_argument("--replay", action="store_true", help="bulk fill: play the units' handling too")
    parser.add_argument("--seed", type=int, default=1, help="bulk fill: the simulator's seed")
    parser.add_argument("--tag", default="sweep", help="bulk fill on PostgreSQL: database name suffix")
    args = parser.parse_args()
    if not args.synthetic:
        if args.path == "row_by_row":
            parser.error("--path row_by_row needs --synthetic")
        if args.database_url or args.reuse:
            parser.error("--database-url / --reuse need --synthetic (the bulk fill makes its own databases)")
        return bulk_main(args)
    url = args.database_url or (scratch_postgres() if args.backend == "postgres" else None)
    if args.path == "row_by_row":
        def unavailable(*a, **kw):
            raise RuntimeError("set-based path disabled by --path row_by_row")
        checks.open_findings = unavailable
        logging.getLogger(checks.__name__).setLevel(logging.CRITICAL)
    runtime = build(url, reuse=args.reuse)
    measure(runtime, args)
    runtime.close()


def bulk_main(args) -> None:
    """Fill with the bulk path, make ``--due`` stages newly due, measure (the same timings as the synthetic)."""
    global START
    if str(DIRECTORY.parents[2]) not in sys.path:  # run as a script: the repository's bench package
        sys.path.insert(0, str(DIRECTORY.parents[2]))
    from bench.fill.__main__ import bench_settings
    from bench.fill.core import FillParams, fill, mark_found_before
    from shared import clock
    from supervise_svc.app import build_runtime

    data_dir = Path(tempfile.mkdtemp(prefix="bench-supervise-"))
    settings = bench_settings(backend=args.backend, data_dir=data_dir, tag=args.tag)
    params = FillParams.for_cases(args.rows + args.due, seed=args.seed)
    started = time.perf_counter()
    report = fill(settings, params, replay=args.replay)
    START = params.at(report.days, 9)  # the morning after the filled period: "now"
    runtime = build_runtime(settings, broker=StubBroker())
    clock.configure(settings)
    clock.current().set(START, frozen=True)
    found = mark_found_before(runtime, START)
    make_due(runtime, args.due)
    print(f"{runtime.engine.dialect.name}: bulk-filled {report.petitions:,} cases over {report.days} days "
          f"(seed {args.seed}, handling {'replayed' if args.replay else 'not replayed: all open'}) in "
          f"{time.perf_counter() - started:.1f}s; {found:,} stages already past due marked found; "
          f"{args.due} 交办 stages made due at {START.isoformat()}; path {args.path}")
    try:
        measure(runtime, args)
    finally:
        runtime.close()
        if args.backend == "postgres":
            from bench.fill.__main__ import pg_databases

            pg_databases(args.tag, create=False)  # the scratch databases of this run


def make_due(runtime, due: int) -> None:
    """Exactly ``due`` open, unexamined 交办 stages (one per case, due later than START) made due five
    minutes (minus i seconds) before START, the case view's 交办 slot with them; their ids go to CHOSEN."""
    from supervise_svc.models import CaseStageView as S, CaseView as V

    with runtime.engine.begin() as conn:
        rows = conn.execute(select(S.id, S.case_id, S.petition_id).where(
            S.kind == "assigned", S.closed_at.is_(None), S.overdue_found_at.is_(None), S.due_at > START)
            .order_by(S.id).limit(due * 2)).all()
        picked, cases = [], set()
        for row in rows:
            if row.case_id not in cases:
                cases.add(row.case_id)
                picked.append(row)
        picked = picked[:due]
        if len(picked) < due:
            raise SystemExit(f"only {len(picked)} open 交办 stages to make due; fill more cases")
        for i, row in enumerate(picked):
            at = START - timedelta(minutes=5) - timedelta(seconds=i)
            conn.execute(update(S).where(S.id == row.id).values(due_at=at))
            conn.execute(update(V).where(V.petition_id == row.petition_id, V.deadline_rows.is_(False))
                         .values(assigned_due_at=at))
    CHOSEN[:] = [row.id for row in picked]


def measure(runtime, args) -> None:
    from supervise_svc import checks
    from supervise_svc.models import CaseStageView

    with runtime.engine.connect() as conn:
        present = conn.scalar(select(func.count()).select_from(CaseStageView))
    started = time.perf_counter()
    if CHOSEN:
        pass  # bulk-filled: made due by make_due
    elif args.reuse and present == args.rows + args.due:
        with runtime.engine.begin() as conn:
            conn.execute(update(CaseStageView).where(CaseStageView.due_at <= START).values(kind="handling"))
        print(f"{runtime.engine.dialect.name}: reusing {present:,} open cases; path {args.path}")
    else:
        if present:
            runtime.metadata.drop_all(runtime.engine)
            runtime.create_schema()
        fill(runtime, args.rows, args.due, load_directory(runtime))
        print(f"{runtime.engine.dialect.name}: filled {args.rows + args.due:,} open cases (views + stages) over "
              f"the handling units of the demo directory in {time.perf_counter() - started:.1f}s; path {args.path}")
    raw, sweep, cpu = [], [], []
    for _ in range(args.repeat):
        reset(runtime)
        seconds, n = raw_select(runtime)
        assert n == args.due, n
        raw.append(seconds)
        started, started_cpu = time.perf_counter(), time.process_time()
        result = checks.overdue_sweep(runtime)
        sweep.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
        assert result == {"examined": args.due, "opened": args.due, "failed": 0}, result
    effects = counts(runtime)
    # The same sweep when the due rows are the petitioner's windows: claim + mark, no finding to open.
    with runtime.engine.begin() as conn:
        conn.execute(update(CaseStageView).where(_chosen(CaseStageView)).values(kind="review_request"))
    bare = []
    for _ in range(args.repeat):
        reset(runtime)
        started = time.perf_counter()
        result = checks.overdue_sweep(runtime)
        bare.append(time.perf_counter() - started)
        assert result["examined"] == args.due and result["opened"] == 0, result
    raw_m, sweep_m, bare_m = statistics.median(raw), statistics.median(sweep), statistics.median(bare)
    interval = runtime.settings.sweep_interval_seconds
    print(f"raw SQL selection of {args.due} due rows: median {raw_m * 1000:.1f} ms")
    print(f"overdue sweep, claim + mark only (no finding due): median {bare_m * 1000:.1f} ms "
          f"(ratio to raw {bare_m / raw_m:.1f})")
    print(f"overdue sweep ({args.due} findings opened, with notices): median {sweep_m * 1000:.1f} ms "
          f"[runs: {', '.join(f'{s * 1000:.0f}' for s in sweep)} ms] (ratio sweep/raw {sweep_m / raw_m:.1f}; "
          f"{sweep_m / args.due * 1000:.2f} ms per finding)")
    print(f"  CPU time of this process per sweep (excludes a PostgreSQL server's work; robust to a busy machine): "
          f"median {statistics.median(cpu) * 1000:.1f} ms")
    print(f"  rows written per sweep: {effects}")
    print(f"detection latency: at most sweep interval {interval:.0f} s + sweep {sweep_m:.2f} s = "
          f"{interval + sweep_m:.2f} s (on average {interval / 2 + sweep_m:.2f} s)")
    with runtime.engine.begin() as conn:  # as filled (a --reuse run finds them so)
        conn.execute(update(CaseStageView).where(_chosen(CaseStageView))
                     .values(kind="assigned" if CHOSEN else "handling"))
    if args.statements:
        statement_timing(runtime)


if __name__ == "__main__":
    main()
