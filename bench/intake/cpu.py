"""CPU per registration, in process: ``python bench/intake/cpu.py [--existing 20000] [--requests 600] [--profile]``.

A companion to run.py for a shared, noisy machine: wall-clock throughput there depends on what
the other users do, CPU time per request much less.  This builds the intake app on a throw-away
PostgreSQL database filled like run.py's (bench/intake/data.py), with the distributed settings
(Redis broker on DB 14 under its own namespace, the outbox relay running in this process as in a
gunicorn worker), sends ``--requests`` registrations with an API key through Flask's test client
one after another, and reports the process CPU time per request (all threads, relay included),
the PostgreSQL backends' CPU per request and the transactions per request.  ``--profile`` adds a
cProfile of the requests (the relay thread is not in it) sorted by cumulative time.
Cleans up the database and the Redis keys on every exit path.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench" / "intake"]
sys.path.insert(0, str(ROOT))

from bench.common import PG_ADMIN_URL, REDIS_URL  # noqa: E402
from bench.intake.run import SECRET, conninfo, create_api_key  # noqa: E402


def _pg_cpu(dbname: str) -> float:
    import psycopg

    from bench.intake.run import _cpu_of

    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        pids = [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,))]
    return sum(_cpu_of(p) or 0 for p in pids)


def _xacts(dbname: str) -> int:
    import psycopg

    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        return conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                            (dbname,)).fetchone()[0]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--existing", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--no-pre-ping", action="store_true",
                    help="experiment: the service engine's pool without pre-ping (a shared/db.py setting)")
    args = ap.parse_args(argv)

    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from bench.intake.data import PLACEHOLDER, World, fill, intake_bodies
    from intake_svc.pii import PiiVault
    from shared.config import Settings
    from shared.migrations import upgrade

    tag = uuid.uuid4().hex[:8]
    dbname = f"xfb_intakecpu_{tag}"
    url = make_url(PG_ADMIN_URL).set(database=dbname).render_as_string(hide_password=False)
    namespace = f"xfb-intakecpu-{tag}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    rds = redis.Redis.from_url(REDIS_URL)
    runtime = None
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    try:
        settings = Settings(secret_key=SECRET, database_urls={s: url for s in ("intake", "assign", "supervise",
                                                                                 "notify")},
                            broker_url=REDIS_URL, redis_namespace=namespace, log_level="WARNING",
                            sweep_interval_seconds=3600, clock_control=False, outbox_poll_seconds=0.5,
                            data_dir=Path("/tmp") / namespace)
        upgrade("intake", settings)
        world = World()
        f = fill(conninfo(url), args.existing, PiiVault(settings), world, log=lambda *_: None)
        bodies, _ = intake_bodies(world, f.repeat_people, args.warmup + args.requests, seed=11)
        _, secret = create_api_key(url, f"cpu-{tag}")

        from intake_svc.app import build_runtime, create_app

        runtime = build_runtime(settings)
        if args.no_pre_ping:
            runtime.engine.pool._pre_ping = False  # experiment only: what shared/db.py's pre-ping costs
        runtime.relay.start()
        app = create_app(settings, runtime=runtime)
        client = app.test_client()
        headers = {"X-API-Key": secret, "Content-Type": "application/json"}

        def send(i: int) -> None:
            body = bodies[i].replace(PLACEHOLDER, f"{tag}-{i}", 1).encode()
            resp = client.post("/intake/api/v1/petitions", data=body, headers=headers)
            if resp.status_code != 201:
                raise RuntimeError(f"{resp.status_code} {resp.get_data(as_text=True)[:300]}")

        for i in range(args.warmup):
            send(i)
        time.sleep(1.0)
        prof = cProfile.Profile() if args.profile else None
        pg0, x0, c0, w0 = _pg_cpu(dbname), _xacts(dbname), time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        for i in range(args.warmup, args.warmup + args.requests):
            send(i)
        if prof:
            prof.disable()
        time.sleep(1.2)  # the relay publishes the tail; counters are flushed once a second
        c1, w1 = time.process_time(), time.perf_counter()
        pg1, x1 = _pg_cpu(dbname), _xacts(dbname)
        with runtime.engine.connect() as conn:
            pending = conn.execute(text("SELECT count(*) FROM outbox WHERE status = 'pending'")).scalar()
            repeats = conn.execute(text("SELECT count(repeat_of) FROM petitions WHERE county_no LIKE :p"),
                                   {"p": f"{tag}-%"}).scalar()
        n = args.requests
        out = {"pre_ping": not args.no_pre_ping, "existing": args.existing, "requests": n, "cpu_ms_per_request": 1000 * (c1 - c0) / n,
               "wall_ms_per_request": 1000 * (w1 - w0 - 1.2) / n, "pg_cpu_ms_per_request": 1000 * (pg1 - pg0) / n,
               "pg_transactions_per_request": (x1 - x0) / n, "outbox_pending_after": pending,
               "flagged_repeat_total": repeats}
        print(json.dumps(out))
        if prof:
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(args.top)
            print(s.getvalue())
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(25)
            print(s.getvalue())
        return 0
    finally:
        if runtime is not None:
            runtime.close()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        admin.dispose()
        for key in rds.scan_iter(match=f"{namespace}*", count=1000):
            rds.delete(key)
        rds.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
