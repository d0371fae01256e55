"""assign_svc benchmarks: ``python bench/assign/run.py [routing|recompute|all] [--scale 1.0] [--threads 4]``.

1. **routing**: 100,000 × scale ``petition.registered`` messages through the real
   ``assign.petition_registered`` actor (dramatiq Worker, in-process broker, PostgreSQL):
   inbox dedupe, routing (属地 + 归口 rules), leader rules, deadline policies and stages on the
   working-day calendar, timeline, outbox rows — end to end into the database.  Baseline in
   the same run: the bare insert (executemany) of exactly the rows the actor wrote.
2. **recompute**: 1,000,000 × scale open cases with a handling stage whose deadline falls in
   2027 (unknown to chinesecalendar: provisional); the operator then enters a (hypothetical)
   2027 holiday arrangement and recomputes ``due_at`` / ``warn_at``.  Baseline in the same
   run: the bare insert of the same case and stage rows.

Needs PostgreSQL at 127.0.0.1:5432 (``XINFANG_BENCH_PG_URL``).  Prints the figures and the
ratios, writes ``bench/results/assign.json``.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench" / "assign"]
sys.path.insert(0, str(ROOT))

import dramatiq  # noqa: E402
from sqlalchemy import delete, func, insert, select, text  # noqa: E402

from bench.common import pg_databases  # noqa: E402
from shared.config import Settings  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
COUNTIES = ("411302", "411303", "411321", "411322", "411323", "411324", "411325", "411326", "411327", "411328",
            "411329", "411330", "411381")
CATEGORIES = ("农村农业", "国土资源", "城乡建设", "劳动和社会保障", "卫生计生", "教育文体", "民政", "政法", "经济管理",
              "交通运输", "商贸旅游", "环境保护", "纪检监察", "其他", "03", "01")


def _runtime(urls: dict[str, str], tmp: Path):
    from shared.broker import make_broker
    from shared.migrations import upgrade
    from assign_svc.app import bootstrap, build_runtime

    settings = Settings(data_dir=tmp, database_urls=urls, secret_key="bench-secret-key-0123456789")
    upgrade("assign", settings)
    runtime = build_runtime(settings, broker=make_broker(settings))
    bootstrap(runtime)
    return runtime


def _petition_bodies(n: int, rng: random.Random) -> list[dict]:
    from shared.contracts import PetitionRegistered, dump_envelope, envelope_for

    start = datetime(2026, 3, 2, 1, tzinfo=timezone.utc)
    bodies = []
    for i in range(n):
        county = rng.choice(COUNTIES)
        region = county if rng.random() < 0.6 else f"{county}{rng.randint(1, 6):03d}000"
        text_ = "扶贫补贴未发放" if rng.random() < 0.05 else "小区外墙脱落，多次反映无人维修"
        payload = PetitionRegistered(
            petition_id=uuid.uuid4().hex, display_no=f"{county}{i:012d}", system="bench", county_no=None,
            region_code=region, category=rng.choice(CATEGORIES), channel="网上信访", request_text=text_,
            petitioner_name="张三", registered_at=start + timedelta(minutes=7 * i),
            flags={"repeat_of": "x"} if rng.random() < 0.1 else {})
        envelope = envelope_for(payload, id=uuid.uuid4().hex, occurred_at=payload.registered_at, producer="intake",
                                correlation_id="")
        bodies.append(dump_envelope(envelope))
    return bodies


def _copy_rows(runtime, tables) -> dict[str, list[dict]]:
    with runtime.engine.connect() as conn:
        return {t.name: [dict(r._mapping) for r in conn.execute(select(t))] for t in tables}


def _bare_insert(runtime, tables, rows: dict[str, list[dict]], batch: int = 2000) -> float:
    with runtime.engine.begin() as conn:
        for t in reversed(tables):
            conn.execute(delete(t))
    started = time.perf_counter()
    with runtime.engine.begin() as conn:
        for t in tables:
            data = rows[t.name]
            for i in range(0, len(data), batch):
                conn.execute(insert(t), data[i:i + batch])
    return time.perf_counter() - started


def bench_routing(n: int, threads: int) -> dict:
    from assign_svc import models

    rng = random.Random(4113)
    with pg_databases() as urls, tempfile.TemporaryDirectory() as tmp:
        runtime = _runtime(urls, Path(tmp))
        with runtime.engine.begin() as conn:  # leave only what the bench writes in the outbox
            conn.execute(delete(models.Outbox.__table__))
        bodies = _petition_bodies(n, rng)
        broker = runtime.broker
        for body in bodies:
            broker.enqueue(dramatiq.Message(queue_name="assign", actor_name="assign.petition_registered",
                                            args=(body,), kwargs={}, options={}, message_id=uuid.uuid4().hex))
        worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        started = time.perf_counter()
        worker.start()
        broker.join("assign", fail_fast=True)
        worker.join()
        elapsed = time.perf_counter() - started
        worker.stop()
        with runtime.sessions() as s:
            cases = s.scalar(select(func.count()).select_from(models.Case))
        tables = [models.Case.__table__, models.CaseDocument.__table__, models.CaseStage.__table__, models.CaseEvent.__table__,
                  models.Outbox.__table__, models.ProcessedMessage.__table__]
        rows = _copy_rows(runtime, tables)
        written = {k: len(v) for k, v in rows.items()}
        baseline = _bare_insert(runtime, tables, rows)
        runtime.close()
    return {"petitions": n, "cases": cases, "threads": threads, "seconds": round(elapsed, 2),
            "msgs_per_s": round(n / elapsed, 1), "rows_written": written,
            "baseline_bare_insert_seconds": round(baseline, 2),
            "baseline_rows_per_s": round(sum(written.values()) / baseline, 1),
            "ratio_actor_vs_bare_insert": round(elapsed / baseline, 2)}


#: A hypothetical 2027 arrangement (the State Council publishes the real one late in 2026).
HOLIDAYS_2027 = {**{date(2027, 1, 1): "restday"},
                 **{date(2027, 2, 5) + timedelta(days=i): "restday" for i in range(9)},
                 date(2027, 1, 31): "workday", date(2027, 2, 20): "workday"}


def bench_recompute(m: int) -> dict:
    from assign_svc import models, recompute, stages
    from assign_svc.domain.deadlines import StageClock, compute
    from shared.calendar import WorkCalendar

    with pg_databases() as urls, tempfile.TemporaryDirectory() as tmp:
        runtime = _runtime(urls, Path(tmp))
        runtime.extras["calendar"] = WorkCalendar(unknown_year="weekends")
        with runtime.sessions() as s:
            policy = s.scalars(select(models.DeadlinePolicyRow).where(models.DeadlinePolicyRow.code == "handling")).one()
        cal = stages.calendar_for(runtime)
        first = date(2026, 11, 1)
        dues = {}
        for d in range(61):
            day = first + timedelta(days=d)
            noon = datetime.combine(day, dtime(12), tzinfo=TZ)
            dues[day] = compute(cal, StageClock(started_at=noon, length=60, unit="calendar_days", roll_forward=True,
                                                basis=policy.basis), tz="Asia/Shanghai")
        cases, stage_rows = [], []
        for i in range(m):
            day = first + timedelta(days=i % 61)
            started = datetime.combine(day, dtime(9), tzinfo=TZ).astimezone(timezone.utc)
            deadline = dues[day]
            cid = f"{i:032x}"
            cases.append({"id": cid, "petition_id": cid, "display_no": f"411302{i:012d}", "unit_id": "411302-zjj",
                          "region_code": "411302", "category": "城乡建设", "status": "办理中", "assigned_at": started,
                          "due_at": deadline.due_at, "deadline_basis": deadline.basis[:128], "row_version": 1,
                          "mode": "forward", "in_clock": True})
            stage_rows.append({"id": f"s{i:031x}", "case_id": cid, "kind": "handling", "unit_id": "411302-zjj",
                               "policy_id": policy.id, "policy_code": "handling", "policy_version": 1,
                               "started_at": started, "start_day": day, "length": 60, "length_unit": "calendar_days",
                               "roll_forward": True, "extension_days": 0, "paused_days": 0, "warn_fraction": 0.2,
                               "due_at": deadline.due_at, "warn_at": deadline.due_at - (deadline.due_at - started) * 0.2,
                               "basis": deadline.basis, "provisional": deadline.provisional})
        tables = [models.Case.__table__, models.CaseStage.__table__]
        baseline = _bare_insert(runtime, tables, {"cases": cases, "case_stages": stage_rows}, batch=5000)
        del cases, stage_rows
        with runtime.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        runtime.extras["calendar"] = WorkCalendar(overrides=HOLIDAYS_2027, declared_years=[2027],
                                                  unknown_year="weekends")
        started = time.perf_counter()
        with runtime.uow() as session:
            result = recompute.recompute_open_stages(session, runtime)
        elapsed = time.perf_counter() - started
        with runtime.sessions() as s:
            still = s.scalar(select(func.count()).select_from(models.CaseStage)
                             .where(models.CaseStage.provisional.is_(True)))
        runtime.close()
    return {"open_cases": m, **result, "still_provisional": still, "seconds": round(elapsed, 2),
            "stages_per_s": round(m / elapsed, 1), "baseline_bare_insert_seconds": round(baseline, 2),
            "ratio_recompute_vs_bare_insert": round(elapsed / baseline, 2)}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="all", choices=("all", "routing", "recompute"))
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 100,000 petitions and 1,000,000 open cases")
    ap.add_argument("--threads", type=int, default=4, help="worker threads of the actor")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("shared.calendar").setLevel(logging.ERROR)
    out: dict = {"scale": args.scale, "at": datetime.now(timezone.utc).isoformat()}
    if args.scenario in ("all", "routing"):
        out["routing"] = bench_routing(int(100_000 * args.scale), args.threads)
        print(json.dumps({"routing": out["routing"]}, ensure_ascii=False, indent=2), flush=True)
    if args.scenario in ("all", "recompute"):
        out["recompute"] = bench_recompute(int(1_000_000 * args.scale))
        print(json.dumps({"recompute": out["recompute"]}, ensure_ascii=False, indent=2), flush=True)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "assign.json").write_text(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
