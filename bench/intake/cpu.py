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
import gc
import io
import json
import os
import pickle
import pstats
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench" / "intake"]
sys.path.insert(0, str(ROOT))

from bench.common import PG_ADMIN_URL, REDIS_URL  # noqa: E402
from bench.intake.run import SECRET, conninfo, create_api_key  # noqa: E402


def _backend_pids(dbname: str, *, clients_only: bool = False) -> list[int]:
    """The PostgreSQL processes connected to ``dbname`` (``clients_only``: no autovacuum worker)."""
    import psycopg

    sql = "SELECT pid FROM pg_stat_activity WHERE datname = %s"
    if clients_only:
        sql += " AND backend_type = 'client backend'"
    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        return [r[0] for r in conn.execute(sql, (dbname,))]


def _pg_cpu(dbname: str) -> float:
    from bench.intake.run import _cpu_of

    return sum(_cpu_of(p) or 0 for p in _backend_pids(dbname))


class Callgrind:
    """Instructions executed by this process between ``start`` and ``stop``, when it runs under ``valgrind
    --tool=callgrind --instr-atstart=no`` (``--callgrind``): ``callgrind_control`` zeroes the counters and
    turns instrumentation on, then off, and dumps them to a file whose ``totals:`` line is read back.
    Instructions, unlike seconds, do not depend on what the machine's other users do: the same code on the
    same requests counts the same within a fraction of a percent, so before/after differences of 1-2 %
    show, where CPU time moves by ±20 %.  They do not weigh cache misses or system calls (PostgreSQL's CPU
    is measured apart, or counted by ``PgLifetimes``), and under valgrind the process runs ~50 times slower."""

    def __init__(self, out_file: str) -> None:
        self.out_file, self.pid = out_file, str(os.getpid())

    def _control(self, *args: str) -> None:
        import subprocess

        subprocess.run(["callgrind_control", *args, self.pid], check=True, capture_output=True)

    def start(self) -> None:
        self._control("--zero")
        self._control("--instr=on")

    def stop(self) -> int:
        import glob

        self._control("--instr=off")
        before = set(glob.glob(self.out_file + ".*"))
        self._control("--dump")
        dumped = sorted(set(glob.glob(self.out_file + ".*")) - before, key=os.path.getmtime)
        for line in Path(dumped[-1]).read_text().splitlines():
            if line.startswith("totals:"):  # (its "summary:" line is 0 after a --zero)
                return int(line.split()[1])
        raise RuntimeError(f"no instruction count in {dumped[-1]}")


class PgLifetimes:
    """Instructions the PostgreSQL backends of database ``dbname`` execute, on a server run under callgrind
    (``--pg-callgrind``: ``bench.pgserver`` with ``callgrind_dir``).  valgrind's gdbserver, through which
    ``callgrind_control`` switches counting on and off, does not follow a fork, so each backend counts from its
    fork to its exit, when it writes ``pg.<pid>`` with its total.  ``close`` ends the backends (every SQLAlchemy
    engine of the process on ``dbname`` is disposed; the next request connects anew) and sums their totals.
    A phase's cost is then a difference: ``close`` after ``prime`` + ``n`` requests minus ``close`` after
    ``prime`` requests alone, each on new connections, so that connecting and loading the catalog cancel out.
    The server's own processes (WAL writer, checkpointer, autovacuum workers) are not counted: an autovacuum
    worker on the database is no client backend."""

    def __init__(self, out_dir: str, dbname: str) -> None:
        self.out_dir, self.dbname = out_dir, dbname

    def close(self) -> int:
        from sqlalchemy.engine import Engine

        pids = _backend_pids(self.dbname, clients_only=True)
        for obj in gc.get_objects():
            if isinstance(obj, Engine) and obj.url.database == self.dbname:
                obj.dispose()
        total, deadline = 0, time.monotonic() + 120
        while left := _backend_pids(self.dbname, clients_only=True):  # (a backend under callgrind takes a while to exit)
            if time.monotonic() > deadline:
                raise RuntimeError(f"[pg-callgrind] backends of {self.dbname} still connected: {left}")
            time.sleep(0.2)
        for pid in pids:
            path = Path(self.out_dir) / f"pg.{pid}"
            while True:
                found = [line for line in (path.read_text().splitlines() if path.exists() else ())
                         if line.startswith("totals:")]
                if found:
                    total += int(found[0].split()[1])
                    path.unlink()
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"[pg-callgrind] no count from backend {pid} in {path}")
                time.sleep(0.2)
        return total

    def measure(self, prime, run) -> tuple[int, object]:
        """The instructions of ``run()`` ((prime + run) minus prime alone, each on new backends) and what it
        returned."""
        self.close()
        prime()
        alone = self.close()
        prime()
        result = run()
        return self.close() - alone, result

    def requests(self, send, first: int, n: int) -> int:
        """The instructions of ``n`` requests (``send(i)`` for the i-th body from ``first`` on, ``n + 2 * PRIME``
        bodies in all) after ``PRIME`` on new connections."""
        bodies = iter(range(first, first + n + 2 * PRIME))
        total, _ = self.measure(lambda: [send(next(bodies)) for _ in range(PRIME)],
                                lambda: [send(next(bodies)) for _ in range(n)])
        return total


#: ``--pg-callgrind``: requests sent on new connections before the counted ones (and alone, to subtract):
#: psycopg prepares a statement at its 5th execution on a connection.
PRIME = 10


def _baseline(admin, tag: str, world, n: int, warmup: int, callgrind: Callgrind | None,
              pg_callgrind_dir: str | None) -> dict:
    """run.py's baseline app (bare Flask + marshmallow + SQLAlchemy, one INSERT) measured as intake is here: ``n``
    requests through the test client after ``warmup``, process and PostgreSQL CPU per request and, under
    ``--callgrind``, instructions.  Its scratch database is dropped afterwards."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from bench.intake import baseline_app
    from bench.intake.data import PLACEHOLDER, baseline_bodies

    dbname = f"xfb_intakecpu_{tag}_baseline"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    try:
        url = make_url(PG_ADMIN_URL).set(database=dbname).render_as_string(hide_password=False)
        baseline_app.create_schema(url)
        app = baseline_app.create_app(url)
        client = app.test_client()
        bodies = baseline_bodies(world, warmup + n + (n + 2 * PRIME if pg_callgrind_dir else 0))
        headers = {"Content-Type": "application/json"}

        def send(i: int) -> None:
            resp = client.post("/register", data=bodies[i].replace(PLACEHOLDER, f"b{tag}-{i}", 1).encode(),
                               headers=headers)
            if resp.status_code != 201:
                raise RuntimeError(f"baseline: {resp.status_code} {resp.get_data(as_text=True)[:300]}")

        for i in range(warmup):
            send(i)
        pg0, c0 = _pg_cpu(dbname), time.process_time()
        if callgrind:
            callgrind.start()
        for i in range(warmup, warmup + n):
            send(i)
        instructions = callgrind.stop() if callgrind else None
        c1, pg1 = time.process_time(), _pg_cpu(dbname)
        if pg_callgrind_dir:
            pg_instructions = PgLifetimes(pg_callgrind_dir, dbname).requests(send, warmup + n, n)
        return {"cpu_ms_per_request": round(1000 * (c1 - c0) / n, 3), "pg_cpu_ms_per_request": round(1000 * (pg1 - pg0) / n, 3),
                **({"instructions_per_request": round(instructions / n)} if callgrind else {}),
                **({"pg_instructions_per_request": round(pg_instructions / n)} if pg_callgrind_dir else {})}
    finally:  # (FORCE: the app's pooled connections are closed by the server)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))


def _under_callgrind(argv: list[str]) -> int:
    """This command again under valgrind's callgrind, instrumentation off until ``Callgrind.start``."""
    import subprocess
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="xfb-cg-")) / "callgrind.out"
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
               sys.executable, str(Path(__file__).resolve()), *argv]
    env = dict(os.environ, XFB_CALLGRIND_OUT=str(out))
    try:
        return subprocess.run(command, env=env).returncode
    finally:
        for f in out.parent.iterdir():
            f.unlink()
        out.parent.rmdir()


def _count_redis_calls() -> dict:
    """Counts Redis commands sent from the request thread (rate limit; the relay's are in its own thread)."""
    import threading

    import redis

    main, counts = threading.get_ident(), {"n": 0}
    original = redis.Redis.execute_command

    def execute_command(self, *a, **kw):
        if threading.get_ident() == main:
            counts["n"] += 1
        return original(self, *a, **kw)

    redis.Redis.execute_command = execute_command
    return counts


def _db_counters(dbname: str) -> tuple[int, int, int]:
    """The database's transactions, and its blocks found in shared buffers and read from the OS (misses)."""
    import psycopg

    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        return conn.execute("SELECT xact_commit + xact_rollback, blks_hit, blks_read FROM pg_stat_database "
                            "WHERE datname = %s", (dbname,)).fetchone()


def _prewarm(url: str) -> None:
    """Read a kept database's tables and indexes into shared buffers (a restarted server starts cold, and the
    operating system's page cache does not keep them on these machines: bench/pgserver.py)."""
    import psycopg

    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        conn.execute("SELECT pg_prewarm(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')")


def _earlier_registrations(url: str) -> int:
    """How many registrations earlier runs sent to a kept database (their new people are 5,000,000 on)."""
    import psycopg

    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM petitions WHERE system = 'bench-intake'").fetchone()[0]


def _call_site() -> str:
    """The innermost project frame and the innermost SQLAlchemy/psycopg frames of the current stack."""
    import traceback

    frames = traceback.extract_stack()[:-2]
    project = [f for f in frames if "/site-packages/" not in f.filename and "/bench/" not in f.filename]
    lib = [f for f in frames if "/site-packages/" in f.filename]
    where = f"{Path(project[-1].filename).name}:{project[-1].lineno} {project[-1].name}" if project else "?"
    return where + " | " + " < ".join(f.name for f in reversed(lib[-4:]))


class WaitCounter:
    """Counts psycopg's blocking exchanges with the server (``Connection.wait``: one per round trip, roughly),
    per thread: the request thread's apart from the relay's."""

    def __init__(self) -> None:
        import threading

        import psycopg

        self.main = threading.get_ident()
        self.counts = {"request": 0, "other": 0}
        original = psycopg.Connection.wait
        counts, main = self.counts, self.main

        self.trace: list[str] | None = None

        def wait(conn, *a, **kw):
            counts["request" if threading.get_ident() == main else "other"] += 1
            if self.trace is not None and threading.get_ident() == main:
                self.trace.append(_call_site())
            return original(conn, *a, **kw)

        psycopg.Connection.wait = wait

    def snapshot(self) -> dict:
        return dict(self.counts)


class GcClock:
    """Runs and wall time of the cyclic garbage collector per generation (``gc.callbacks``), in any thread."""

    def __init__(self) -> None:
        self.totals = {g: [0, 0.0] for g in range(3)}
        self.started = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            entry = self.totals[info["generation"]]
            entry[0] += 1
            entry[1] += time.perf_counter() - self.started

    def snapshot(self) -> dict[int, tuple[int, float]]:
        return {g: (n, t) for g, (n, t) in self.totals.items()}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--existing", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--top", type=int, default=45)
    ap.add_argument("--profile-out", type=Path, default=None, help="with --profile: also save the pstats there")
    ap.add_argument("--pre-ping", action="store_true",
                    help="experiment: SQLAlchemy's pre-ping on every checkout (shared/db.py's default before it "
                         "pinged only connections that sat idle)")
    ap.add_argument("--relay", choices=("thread", "none"), default="thread",
                    help="thread: the outbox relay runs in this process as in a web worker (its CPU counted); "
                         "none: it does not run here (as when only `xinfang worker` relays)")
    ap.add_argument("--relay-batches", default="200",
                    help="with --relay none: the batch sizes at which the relay then publishes the measured "
                         "requests' rows, each size in turn (the rows are set pending again between sizes), "
                         "e.g. 2,16,200; a web worker's relay under load publishes a few dozen at a time")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure this many rounds of --requests each and report every round and the medians")
    ap.add_argument("--profile-clock", choices=("cpu", "wall"), default="cpu",
                    help="cProfile timer: cpu = this thread's CPU time (waits excluded), wall = elapsed time")
    ap.add_argument("--gc-threshold", default=None,
                    help="gc.set_threshold for the app (e.g. 50000,20,100; default: the interpreter's 700,10,10); "
                         "the cyclic collector's runs and time during the measured requests are reported either way")
    ap.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the app is built (as a server could)")
    ap.add_argument("--pg", choices=("own", "url"), default="own",
                    help="own: a PostgreSQL server of the bench's own, configured as in production (bench/pgserver.py; "
                         "with --keep-db kept in /var/tmp/xfb-bench-pg); url: the one at XINFANG_BENCH_PG_URL")
    ap.add_argument("--keep-db", metavar="NAME", default=None,
                    help="fill database NAME once and keep it (with its fill result in /var/tmp) for later "
                         "runs with the same NAME: a 1,000,000 population takes ~13 min to build, then seconds "
                         "(each run adds its registrations; drop it with DROP DATABASE when done)")
    ap.add_argument("--callgrind", action="store_true",
                    help="also count the instructions this process executes per request (and per registration "
                         "the relay publishes, with --relay none) under valgrind's callgrind: repeatable on a "
                         "noisy machine, ~50 times slower (use --existing 2000 --requests 200 --warmup 20)")
    ap.add_argument("--baseline", action="store_true",
                    help="then the same for run.py's baseline app (bench/intake/baseline_app.py) in this process, "
                         "on a scratch database of the same server: its CPU (and with --callgrind instructions) "
                         "per request beside intake's, and the ratio")
    ap.add_argument("--pg-callgrind", action="store_true",
                    help="run the bench's own PostgreSQL server under callgrind too and count the instructions its "
                         "backends execute per request (intake's, the relay's and, with --baseline, the baseline's): "
                         "PostgreSQL's side of the work, repeatable like --callgrind (implies --pg own)")
    ap.add_argument("--schema-experiment", metavar="SQL", default=None,
                    help="experiment: run SQL on the intake database after the fill, before the requests (e.g. drop "
                         "an index or a foreign key to see what it costs per registration, without a migration)")
    ap.add_argument("--trace-waits", action="store_true",
                    help="print where each PostgreSQL round trip of one request comes from")
    args = ap.parse_args(argv)
    if args.pg_callgrind and "XFB_PG_CALLGRIND_DIR" not in os.environ:
        import shutil
        import tempfile

        from bench.pgserver import rerun_under_own_server

        if args.keep_db:
            ap.error("--pg-callgrind starts a scratch server: no --keep-db")
        out_dir = Path(tempfile.mkdtemp(prefix="xfb-pgcg-", dir="/var/tmp"))
        try:
            return rerun_under_own_server(__file__, argv, callgrind_dir=out_dir)  # (its --pg url comes last)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
    if args.pg == "own":  # the same command again, against a server of its own (bench/pgserver.py)
        from bench.pgserver import KEPT_DATADIR, rerun_under_own_server

        return rerun_under_own_server(__file__, argv, datadir=KEPT_DATADIR if args.keep_db else None)
    if args.callgrind and "XFB_CALLGRIND_OUT" not in os.environ:
        return _under_callgrind(argv)
    callgrind = Callgrind(os.environ["XFB_CALLGRIND_OUT"]) if args.callgrind else None
    pg_callgrind_dir = os.environ.get("XFB_PG_CALLGRIND_DIR") if args.pg_callgrind else None

    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from bench.intake.data import PLACEHOLDER, World, fill, intake_bodies
    from intake_svc.pii import PiiVault
    from shared.config import Settings
    from shared.migrations import upgrade

    tag = uuid.uuid4().hex[:8]
    dbname = args.keep_db or f"xfb_intakecpu_{tag}"
    kept = Path("/var/tmp") / f"{dbname}.fill.pickle"  # the fill result of a kept database
    url = make_url(PG_ADMIN_URL).set(database=dbname).render_as_string(hide_password=False)
    namespace = f"xfb-intakecpu-{tag}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    rds = redis.Redis.from_url(REDIS_URL)
    runtime = None
    with admin.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": dbname}).first() is not None
    reuse = bool(args.keep_db) and kept.exists() and exists
    if not reuse:
        with admin.connect() as conn:
            if args.keep_db:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    try:
        settings = Settings(secret_key=SECRET, database_urls={s: url for s in ("intake", "assign", "supervise",
                                                                                 "notify")},
                            broker_url=REDIS_URL, redis_namespace=namespace, log_level="WARNING",
                            sweep_interval_seconds=3600, clock_control=False, outbox_poll_seconds=0.5,
                            data_dir=Path("/tmp") / namespace)
        world = World()
        if reuse:
            f = pickle.loads(kept.read_bytes())
            print(f"reusing {dbname}: {f.n} petitions filled earlier; loading it into shared buffers", flush=True)
            _prewarm(url)
        else:
            upgrade("intake", settings)
            f = fill(conninfo(url), args.existing, PiiVault(settings), world, log=lambda *_: None)
            if args.keep_db:
                kept.write_bytes(pickle.dumps(f))
        if args.schema_experiment:
            experiment = create_engine(url, isolation_level="AUTOCOMMIT")
            with experiment.connect() as conn:
                conn.exec_driver_sql(args.schema_experiment)
            experiment.dispose()
        count = args.warmup + args.requests * args.rounds + 1
        pg_lifetimes = PgLifetimes(pg_callgrind_dir, dbname) if pg_callgrind_dir else None
        if pg_lifetimes:  # its own pass of --requests, after the rounds, each on new connections after PRIME
            count += args.requests + 2 * PRIME
        # a kept database holds the earlier runs' registrations: new people and seeds after theirs
        earlier = _earlier_registrations(url) if reuse else 0
        bodies, _ = intake_bodies(world, f.repeat_people, count, seed=11 + earlier, new_base=5_000_000 + earlier)
        _, secret = create_api_key(url, f"cpu-{tag}")

        from intake_svc.app import build_runtime, create_app

        runtime = build_runtime(settings)
        if args.pre_ping:
            runtime.engine.pool._pre_ping = True  # experiment only: what a ping per checkout costs
        if args.relay == "thread":
            runtime.relay.start()
        app = create_app(settings, runtime=runtime)
        client = app.test_client()
        if args.gc_threshold:
            gc.set_threshold(*(int(x) for x in args.gc_threshold.split(",")))
        if args.gc_freeze:
            gc.collect()
            gc.freeze()
        collector = GcClock()
        headers = {"X-API-Key": secret, "Content-Type": "application/json"}

        def send(i: int) -> None:
            body = bodies[i].replace(PLACEHOLDER, f"{tag}-{i}", 1).encode()
            resp = client.post("/intake/api/v1/petitions", data=body, headers=headers)
            if resp.status_code != 201:
                raise RuntimeError(f"{resp.status_code} {resp.get_data(as_text=True)[:300]}")

        for i in range(args.warmup):
            send(i)
        time.sleep(1.0)
        waits = WaitCounter()
        redis_calls = _count_redis_calls()
        timer = time.thread_time if args.profile_clock == "cpu" else time.perf_counter
        prof = cProfile.Profile(timer) if args.profile else None
        if args.trace_waits:
            waits.trace = []
            send(args.warmup + args.requests * args.rounds)
            print("psycopg waits of one request (innermost project frame | library frames):")
            for line in waits.trace:
                print("  " + line)
            waits.trace = None
        rounds = []
        n = args.requests
        for r in range(args.rounds):
            first = args.warmup + r * n
            pg0, (x0, hit0, read0) = _pg_cpu(dbname), _db_counters(dbname)
            c0, w0 = time.process_time(), time.perf_counter()
            wt0, rc0, gc0 = waits.snapshot(), redis_calls["n"], collector.snapshot()
            if prof:
                prof.enable()
            if callgrind:
                callgrind.start()
            for i in range(first, first + n):
                send(i)
            instructions = callgrind.stop() if callgrind else None
            if prof:
                prof.disable()
            w1 = time.perf_counter()
            time.sleep(1.2)  # the relay publishes the tail; counters are flushed once a second
            c1 = time.process_time()
            pg1, (x1, hit1, read1) = _pg_cpu(dbname), _db_counters(dbname)
            wt1, gc1 = waits.snapshot(), collector.snapshot()
            rounds.append({"cpu_ms_per_request": 1000 * (c1 - c0) / n, "wall_ms_per_request": 1000 * (w1 - w0) / n,
                           "pg_cpu_ms_per_request": 1000 * (pg1 - pg0) / n,
                           "pg_transactions_per_request": (x1 - x0) / n,
                           "pg_blocks_hit_per_request": (hit1 - hit0) / n,
                           "pg_blocks_read_per_request": (read1 - read0) / n,
                           "pg_waits_per_request": (wt1["request"] - wt0["request"]) / n,
                           "pg_waits_other_threads_per_request": (wt1["other"] - wt0["other"]) / n,
                           "redis_calls_per_request_thread": (redis_calls["n"] - rc0) / n,
                           **{f"gc{g}_runs_per_1000": 1000 * (gc1[g][0] - gc0[g][0]) / n for g in range(3)},
                           "gc_ms_per_request": 1000 * sum(gc1[g][1] - gc0[g][1] for g in range(3)) / n,
                           **({"instructions_per_request": instructions / n} if callgrind else {})})
            print(json.dumps({"round": r + 1, **{k: round(v, 3) for k, v in rounds[-1].items()}}), flush=True)
        if pg_lifetimes:
            pg_request = pg_lifetimes.requests(send, args.warmup + args.requests * args.rounds + 1, n)
        relay_batched = None
        if args.relay == "none":
            # What the relay costs per registration (2 outbox rows) when it publishes in batches of a given
            # size (a relay process polling every XINFANG_OUTBOX_POLL_SECONDS takes up to 200 at a time):
            # drain everything the measured requests left, then set it pending again for the next size.
            relay_batched = {}

            def reset_outbox() -> None:  # the drained rows pending again; every drain starts from the same table
                with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("UPDATE outbox SET status = 'pending' WHERE status = 'published'"))
                    conn.execute(text("VACUUM ANALYZE outbox"))

            def touch_outbox() -> None:  # a query that loads the outbox table's catalog entries on a new backend
                with runtime.engine.connect() as conn:
                    conn.execute(text("SELECT count(*) FROM outbox WHERE status = 'none'"))

            for size in [int(b) for b in args.relay_batches.split(",")]:
                runtime.relay.batch_size = size

                def drain() -> dict:
                    c0, p0 = time.process_time(), _pg_cpu(dbname)
                    if callgrind:
                        callgrind.start()
                    published = runtime.relay.drain()
                    instructions = callgrind.stop() if callgrind else None
                    c1 = time.process_time()
                    time.sleep(1.2)
                    per = published / 2
                    return {"rows": published, "cpu_ms_per_request": round(1000 * (c1 - c0) / per, 3),
                            # (under --pg-callgrind the backends come and go: their CPU is counted in instructions)
                            **({} if pg_lifetimes else
                               {"pg_cpu_ms_per_request": round(1000 * (_pg_cpu(dbname) - p0) / per, 3)}),
                            **({"instructions_per_request": round(instructions / per)} if callgrind else {})}

                if pg_lifetimes:  # the same drain, on new backends (after a first query on the outbox table)
                    pg_drain, found = pg_lifetimes.measure(touch_outbox, drain)
                    found["pg_instructions_per_request"] = round(pg_drain / (found["rows"] / 2))
                else:
                    found = drain()
                relay_batched[f"batch_{size}"] = found
                reset_outbox()
        with runtime.engine.connect() as conn:
            pending = conn.execute(text("SELECT count(*) FROM outbox WHERE status = 'pending'")).scalar()
            repeats = conn.execute(text("SELECT count(repeat_of) FROM petitions WHERE county_no LIKE :p"),
                                   {"p": f"{tag}-%"}).scalar()
        out = {"pre_ping": args.pre_ping, "relay": args.relay, "existing": args.existing, "requests": n,
               "rounds": args.rounds, "loadavg": round(os.getloadavg()[0], 2)}
        out.update({k: round(statistics.median(r[k] for r in rounds), 3) for k in rounds[0]})
        if pg_lifetimes:
            out["pg_instructions_per_request"] = round(pg_request / n)
        out.update(outbox_pending_after=pending, flagged_repeat_total=repeats)
        if relay_batched:
            out["relay_drained_afterwards"] = relay_batched
        if args.baseline:
            out["baseline"] = _baseline(admin, tag, world, n, args.warmup, callgrind, pg_callgrind_dir)
            if callgrind and relay_batched:
                ours = out["instructions_per_request"] + max(b["instructions_per_request"] for b in relay_batched.values())
                out["instructions_ratio_baseline_to_intake"] = round(out["baseline"]["instructions_per_request"] / ours, 3)
                if pg_callgrind_dir:  # both sides of the work: the process's and the PostgreSQL backends'
                    relay = max(relay_batched.values(), key=lambda b: b["instructions_per_request"])
                    ours += out["pg_instructions_per_request"] + relay["pg_instructions_per_request"]
                    theirs = out["baseline"]["instructions_per_request"] + out["baseline"]["pg_instructions_per_request"]
                    out["instructions_ratio_with_postgresql"] = round(theirs / ours, 3)
        print(json.dumps(out))
        if prof and args.profile_out:
            prof.dump_stats(str(args.profile_out))
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
        if not args.keep_db:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        admin.dispose()
        for key in rds.scan_iter(match=f"{namespace}*", count=1000):
            rds.delete(key)
        rds.close()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
