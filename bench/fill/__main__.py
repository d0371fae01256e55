"""``python -m bench.fill``: bulk-fill intake, assign and supervise with the simulator's workload.

    .venv/bin/python -m bench.fill --cases 1000000 --backend postgres --seed 1
    .venv/bin/python -m bench.fill --cases 100000 --backend sqlite --data-dir /tmp/xfb-fill
    .venv/bin/python -m bench.fill --days 30 --per-day 12 --seed 3 --backend sqlite   # the simulator's parameters
    .venv/bin/python -m bench.fill --cases 1000000 --backend postgres --no-replay   # all cases left at 待签收
    .venv/bin/python -m bench.fill --cases 100000 --backend postgres --workers 1   # one process (A/B)

PostgreSQL: three scratch databases ``xfb_fill_<service>_<tag>`` on ``XINFANG_BENCH_PG_URL`` (re-created;
``--drop`` drops them at the end).  SQLite: ``<data-dir>/<service>.db`` (the folder must be new or empty).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import date
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench.fill.core import SERVICES, FillParams, fill

PG_ADMIN_URL = os.environ.get("XINFANG_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-fill-secret-key-0123456789"


def pg_databases(tag: str, *, create: bool = True) -> dict[str, str]:
    """(Re-)create ``xfb_fill_<svc>_<tag>`` for intake, assign, supervise; their URLs."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = {svc: f"xfb_fill_{svc}_{tag}" for svc in SERVICES}
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                if create:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    base = make_url(PG_ADMIN_URL)
    return {svc: base.set(database=name).render_as_string(hide_password=False) for svc, name in names.items()}


def bench_settings(*, backend: str, data_dir: Path, tag: str = "main", secret_key: str = SECRET):
    """Settings whose intake/assign/supervise databases are the fill's (a fresh set)."""
    from shared.config import Settings

    settings = Settings(data_dir=data_dir, secret_key=secret_key, clock_control=True)
    if backend == "postgres":
        settings = settings.replace(database_urls=pg_databases(tag))
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fill", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=None, help="petitions to write (default: what --days draws)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=float, default=None, help="default: --cases / --days, else 12")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2026, 1, 1), help="first simulated day")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--data-dir", type=Path, default=None, help="SQLite files (default: a new temp folder)")
    parser.add_argument("--tag", default="main", help="PostgreSQL database name suffix")
    parser.add_argument("--drop", action="store_true", help="drop the PostgreSQL databases afterwards")
    parser.add_argument("--chunk", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (shards by petitioner; default: 2 on PostgreSQL, 1 on SQLite)")
    parser.add_argument("--no-replay", action="store_true",
                        help="leave every case as routing leaves it (待签收): no handling after 交办 (faster)")
    args = parser.parse_args(argv)
    if args.cases is not None:
        params = FillParams.for_cases(args.cases, seed=args.seed, days=args.days, start=args.start)
        if args.per_day is not None:
            params.per_day = args.per_day
    else:
        params = FillParams(seed=args.seed, days=args.days, per_day=args.per_day or 12.0, start=args.start)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="xfb-fill-"))
    if args.backend == "sqlite" and data_dir.exists() and any(data_dir.glob("*.db")):
        parser.error(f"{data_dir} already holds databases; give a new or empty --data-dir")
    settings = bench_settings(backend=args.backend, data_dir=data_dir, tag=args.tag)
    from tqdm import tqdm

    total = params.cases or round(params.per_day * params.days)
    with tqdm(total=total, unit="case", unit_scale=True, file=sys.stderr, desc="bulk fill") as bar:
        report = fill(settings, params, chunk=args.chunk, progress=bar.update, replay=not args.no_replay,
                      workers=args.workers)
    print(f"{args.backend}: seed {params.seed}, from {params.start}, " + "\n".join(report.lines()))
    for svc in SERVICES:
        url = settings.database_urls.get(svc) or f"sqlite:///{data_dir / (svc + '.db')}"
        print(f"  {svc}: {make_url(url).render_as_string(hide_password=True)}")
    if args.backend == "postgres" and args.drop:
        pg_databases(args.tag, create=False)
        print("  (dropped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
