"""Intake throughput bench: ``python bench/intake/run.py [--existing 1000000] [--seconds 20] [--clients 32]``.

Sustained registrations per second through the native API (POST /intake/api/v1/petitions with an
API key: full validation, repeat detection through the blind index, persistence, history, outbox and
its relay to Redis), on PostgreSQL, served by ``xinfang serve intake`` (gunicorn), against
  * a small table (``--small`` existing petitions, default 10,000) and
  * a large one (``--existing``, default 1,000,000),
and, in the same run, the baseline: a bare Flask + marshmallow + SQLAlchemy endpoint validating a
10-field body and inserting one row (bench/intake/baseline_app.py), same gunicorn settings, same
PostgreSQL server, measured before and after the intake runs.  That server is the bench's own, configured
as a production one (bench/pgserver.py: shared_buffers a quarter of the memory, autovacuum on); ``--pg url``
uses the one at XINFANG_BENCH_PG_URL instead.

Load: ``wrk`` (C, epoll; closed loop, ``--clients`` keep-alive connections on ``--wrk-threads``
threads, every request's latency recorded in its histogram; bench/intake/load.lua sends distinct
bodies).  Its CPU time is measured and reported, as are the server's and PostgreSQL's.
Prints a table and writes bench/results/intake.json.  Cleans up databases, processes and Redis keys
on every exit path.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench" / "intake"]
sys.path.insert(0, str(ROOT))

from bench.common import PG_ADMIN_URL, REDIS_URL, free_port  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = ROOT / "bench" / "results"
SECRET = "bench-intake-secret-key-0123456789"
JURISDICTION = "411300"  # 南阳市: the API key's region subtree; every load body is inside it
TARGET_RATIO, TARGET_P99_MS = 0.60, 100.0
#: Production defaults except quiet logs, no sweeps, no clock control (as bench/thin_slice.py).
SERVE_ENV = {"XINFANG_LOG_LEVEL": "WARNING", "XINFANG_SWEEP_INTERVAL_SECONDS": "3600",
             "XINFANG_CLOCK_CONTROL": "0", "XINFANG_OUTBOX_POLL_SECONDS": "0.5",
             "XINFANG_REDIS_HEARTBEAT_MS": "60000", "XINFANG_REDIS_MAINTENANCE_CHANCE": "1000"}
CLK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--existing", type=int, default=1_000_000, help="existing petitions in the large table")
    ap.add_argument("--small", type=int, default=10_000, help="existing petitions in the small table")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured load per target (>= 20 for the issue)")
    ap.add_argument("--warmup", type=float, default=4.0, help="warm-up load before each measurement (excluded)")
    ap.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (both apps)")
    ap.add_argument("--threads", type=int, default=4,
                    help="gunicorn threads per worker (both apps); default xinfang serve's own (4)")
    ap.add_argument("--worker-connections", type=int, default=None,
                    help="connections one gunicorn worker holds at most (both apps); default clients / workers, "
                         "rounded up, so that wrk's keep-alive connections spread evenly over the workers")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (each an event loop)")
    ap.add_argument("--repeat-share", type=float, default=0.2, help="share of registrations from known people")
    ap.add_argument("--no-spread", action="store_true",
                    help="skip the diagnostic run whose new petitioners are spread over all Henan counties "
                         "(fewer registrations per (region, day) display-number counter)")
    ap.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                    help="py-spy the intake workers at the large table after the measurements "
                         "(auto: when the target is missed)")
    ap.add_argument("--profile-seconds", type=float, default=12.0)
    ap.add_argument("--relay", choices=("web", "worker"), default="web",
                    help="who publishes intake's outbox: web (as shipped) = a relay thread in every gunicorn worker, "
                         "woken after each commit; worker = XINFANG_WEB_RELAY=0 and an `xinfang worker intake` "
                         "process beside gunicorn whose relay publishes in batches every XINFANG_OUTBOX_POLL_SECONDS "
                         "(its CPU is counted as server CPU)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (process logs, profiles)")
    ap.add_argument("--pg", choices=("own", "url"), default="own",
                    help="own: a PostgreSQL server of the bench's own, configured as in production (bench/pgserver.py); "
                         "url: the server at XINFANG_BENCH_PG_URL (default the machine's 127.0.0.1:5432)")
    args = ap.parse_args(argv)
    if args.worker_connections is None:
        args.worker_connections = -(-args.clients // args.workers)
    return args


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# -- CPU accounting -------------------------------------------------------------------------------

def _cpu_of(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine (every core)."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


class CpuMeter:
    """CPU seconds of the server's processes (with ``extra_pids``: the relay worker) and of this database's
    PostgreSQL backends."""

    def __init__(self, server_pid: int, pg_conninfo: str, dbname: str, extra_pids: tuple[int, ...] = ()) -> None:
        self.server = [server_pid, *_children(server_pid), *extra_pids]
        self.pg_conninfo, self.dbname = pg_conninfo, dbname

    def _pg_pids(self) -> list[int]:
        import psycopg

        with psycopg.connect(self.pg_conninfo, autocommit=True) as conn:
            return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                               (self.dbname,))]

    def _xacts(self) -> int:
        import psycopg

        with psycopg.connect(self.pg_conninfo, autocommit=True) as conn:
            return conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
                                (self.dbname,)).fetchone()[0]

    def snapshot(self) -> dict:
        pg = {pid: _cpu_of(pid) for pid in self._pg_pids()}
        return {"server": {pid: _cpu_of(pid) for pid in self.server}, "pg": pg, "machine": _machine_busy(),
                "t": time.perf_counter(), "xacts": self._xacts()}

    @staticmethod
    def delta(a: dict, b: dict) -> dict:
        def d(kind):
            return sum((b[kind][p] or 0) - (a[kind].get(p) or 0) for p in b[kind] if b[kind][p] is not None)
        wall = b["t"] - a["t"]
        busy = (b["machine"][0] - a["machine"][0]) / CLK
        return {"server_cores": d("server") / wall, "pg_cores": d("pg") / wall, "machine_busy_cores": busy / wall,
                "pg_backends": len(b["pg"]), "pg_transactions": b["xacts"] - a["xacts"]}


# -- load -----------------------------------------------------------------------------------------

class Bodies:
    """A file of request bodies and how many of them earlier runs used: every run (warm-ups
    included) starts after the last one's bodies, so a "new" petitioner is new exactly once."""

    def __init__(self, path: Path, count: int) -> None:
        self.path, self.count, self.used = path, count, 0


def wrk(url: str, *, bodies: Bodies, headers: dict[str, str], seconds: float, clients: int, threads: int,
        prefix: str) -> dict:
    """One bounded wrk run (wrk stops itself after ``seconds``; killed if it overruns by 30 s)."""
    env = dict(os.environ, BENCH_BODIES=str(bodies.path), BENCH_PATH=urllib.parse.urlsplit(url).path,
               BENCH_SKIP=str(bodies.used),
               BENCH_HEADERS="|".join(f"{k}: {v}" for k, v in headers.items()), BENCH_PREFIX=prefix,
               BENCH_THREADS=str(threads))
    base = url.split("/", 3)
    cmd = ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(HERE / "load.lua"), "/".join(base[:3]) + "/"]
    out_file = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=out_file, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + seconds + 30
    rusage = None
    try:
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                raise TimeoutError("wrk overran its duration")
            time.sleep(0.05)
    finally:
        if proc.returncode is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out_file.seek(0)
    text = out_file.read().decode(errors="replace")
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {proc.returncode}):\n{text[-2000:]}")
    r = json.loads(line.removeprefix("BENCH_RESULT "))
    bodies.used += r["sent"]
    if bodies.used > bodies.count:
        log(f"warning: {bodies.used} bodies used of {bodies.count}; the file was cycled")
    dur = r["duration_us"] / 1e6
    errors = (r["bad"] + r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"])
    return {"requests": r["requests"], "ok": r["ok"], "errors": errors, "non_201": r["bad"],
            "socket_errors": r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"],
            "first_error": r["first_bad"], "seconds": dur, "req_per_s": r["ok"] / dur,
            "p50_ms": r["p50_us"] / 1000, "p90_ms": r["p90_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
            "p999_ms": r["p999_us"] / 1000, "max_ms": r["max_us"] / 1000, "mean_ms": r["mean_us"] / 1000,
            "client_cores": (rusage.ru_utime + rusage.ru_stime) / dur}


def write_bodies(path: Path, bodies: list[str]) -> Bodies:
    path.write_text("\n".join(bodies) + "\n", encoding="utf-8")
    return Bodies(path, len(bodies))


def warm_up(name: str, url: str, *, bodies: Bodies, headers: dict, args, tag: str) -> list[dict]:
    # Warm-up until steady: the first requests of each worker load the code tables and the text
    # matcher's tokenizer (seconds); repeat short runs until one has p99 < 1 s (at most 8 runs).
    warm = []
    for attempt in range(8):
        w = wrk(url, bodies=bodies, headers=headers, seconds=args.warmup, clients=args.clients,
                threads=args.wrk_threads, prefix=f"{tag}w{attempt}")
        warm.append({k: w[k] for k in ("req_per_s", "p50_ms", "p99_ms", "errors")})
        log(f"{name}: warm-up {attempt + 1} ({args.warmup:g}s): {w['req_per_s']:.1f} req/s, "
            f"p99 {w['p99_ms']:.0f} ms, errors {w['errors']}")
        if w["ok"] and w["p99_ms"] < 1000 and not w["errors"]:
            break
    return warm


def checkpoint(name: str) -> float:
    """A PostgreSQL CHECKPOINT before a phase: the dirty pages the previous phase (or the fill) left are
    written now, not during the next phase's measurement, where the write-back slowed the commits of whichever
    target came next (the baseline after the intake phases ran at 1.56–1.60 busy cores against 1.83–1.84 before
    them, in two runs of session 12).  Returns its seconds."""
    import psycopg

    started = time.monotonic()
    with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    took = time.monotonic() - started
    log(f"{name}: CHECKPOINT before the phase took {took:.1f}s")
    return took


def measure(name: str, url: str, *, bodies: Bodies, headers: dict, args, meter: CpuMeter, tag: str) -> dict:
    checkpoint_seconds = checkpoint(name)
    warm = warm_up(name, url, bodies=bodies, headers=headers, args=args, tag=tag)
    log(f"{name}: measuring {args.seconds:g}s at {args.clients} clients")
    before = meter.snapshot()
    out = wrk(url, bodies=bodies, headers=headers, seconds=args.seconds, clients=args.clients,
              threads=args.wrk_threads, prefix=f"{tag}m")
    after = meter.snapshot()
    time.sleep(1.2)  # PostgreSQL flushes a backend's transaction counters at most once a second
    after["xacts"] = meter._xacts()  # (transactions of the 1.2 s tail are the relay's last publishes)
    out.update(CpuMeter.delta(before, after))
    out["pg_transactions_per_request"] = out["pg_transactions"] / max(out["ok"], 1)
    out["loadavg"] = os.getloadavg()[0]
    out["warmup"] = warm
    out["checkpoint_seconds"] = checkpoint_seconds
    log(f"{name}: {out['req_per_s']:.1f} req/s, p50 {out['p50_ms']:.1f} ms, p99 {out['p99_ms']:.1f} ms, "
        f"errors {out['errors']}; cores: server {out['server_cores']:.2f}, postgres {out['pg_cores']:.2f}, "
        f"client {out['client_cores']:.2f}, machine {out['machine_busy_cores']:.2f}; "
        f"PostgreSQL transactions per request {out['pg_transactions_per_request']:.2f}")
    if out["errors"]:
        log(f"{name}: first error: {out['first_error']}")
    return out


# -- processes ------------------------------------------------------------------------------------

def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready after {timeout:.0f}s")


class Procs:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir, self.procs = log_dir, {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def spawn(self, name: str, cmd: list[str], env: dict) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def tail(self, name: str) -> str:
        p = self.log_dir / f"{name}.log"
        return p.read_text(errors="replace")[-3000:] if p.exists() else ""


def intake_env(workdir: Path, url: str, namespace: str, relay: str = "web") -> dict:
    from shared.config import SERVICES
    from tests.stack import stack_env

    return stack_env(data_dir=workdir / f"var-{namespace}", db_urls={s: url for s in SERVICES},
                     broker_url=REDIS_URL, secret=SECRET, namespace=namespace,
                     extra={**SERVE_ENV, "XINFANG_WEB_RELAY": "1" if relay == "web" else "0"})


def start_relay_worker(procs: Procs, name: str, env: dict) -> subprocess.Popen:
    """``xinfang worker intake`` (one consumer thread): with XINFANG_WEB_RELAY=0 its relay publishes the outbox.
    Ready when it runs more than two threads (the relay starts before the Dramatiq worker's threads)."""
    proc = procs.spawn(name, [sys.executable, "-m", "shared.cli", "worker", "intake", "--threads", "1"], env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(Path(f"/proc/{proc.pid}/task").glob("*"))) > 2:
            return proc
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not start its relay:\n{procs.tail(name)}")


def start_intake(procs: Procs, name: str, env: dict, args) -> tuple[str, subprocess.Popen]:
    port = free_port()
    proc = procs.spawn(name, [sys.executable, "-m", "shared.cli", "serve", "intake", "--host", "127.0.0.1",
                              "--port", str(port), "--workers", str(args.workers), "--threads", str(args.threads),
                              "--worker-connections", str(args.worker_connections)],
                       env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/intake/readyz", proc)
    return base, proc


def start_baseline(procs: Procs, name: str, url: str, args) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")}
    env.update(BENCH_BASELINE_DB=url, PYTHONUNBUFFERED="1")
    proc = procs.spawn(name, [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
                              str(args.workers), "--threads", str(args.threads), "--graceful-timeout", "30",
                              "--worker-connections", str(args.worker_connections),
                              "bench.intake.baseline_app:create_app()"], env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/ready", proc)
    return base, proc


# -- database -------------------------------------------------------------------------------------

def server_settings(conn) -> dict:
    """What the figures depend on in the server's configuration (recorded with them)."""
    from sqlalchemy import text

    names = ("server_version", "shared_buffers", "effective_cache_size", "autovacuum", "synchronous_commit",
             "max_connections")
    return {name: conn.execute(text(f"SHOW {name}")).scalar() for name in names}


def conninfo(sa_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(sa_url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_api_key(url: str, name: str, jurisdiction: str = JURISDICTION) -> tuple[str, str]:
    from intake_svc.apikeys import create_key
    from shared.db import create_db_engine, session_factory, unit_of_work

    engine = create_db_engine(url)
    with unit_of_work(session_factory(engine)) as session:
        # A county system with a negotiated limit well above what the bench sends (limit still enforced).
        client, secret = create_key(session, name=name, system="bench-intake", jurisdiction=jurisdiction,
                                    rate_limit="1000000/minute")
        client_id = client.id
    engine.dispose()
    return client_id, secret


def candidate_sql(engine, blinds: list[str]):
    """The detection candidate query exactly as intake_svc.detection._candidates builds it."""
    from intake_svc.detection import candidates_stmt
    from intake_svc.models import Petitioner

    since = datetime.now(timezone.utc) - timedelta(days=365)
    stmt = candidates_stmt(Petitioner.id_blind, blinds, since)
    compiled = stmt.compile(dialect=engine.dialect)
    expanded = compiled.construct_expanded_state(compiled.construct_params())  # the IN list as bound values
    processors = compiled._bind_processors
    params = {k: processors[k](v) if k in processors else v for k, v in expanded.parameters.items()}
    return expanded.statement, params


def explain_and_time(url: str, blinds: list[str]) -> dict:
    """EXPLAIN (ANALYZE, BUFFERS) of the candidate query for one known person, and its execution
    time over ``blinds`` (median / p99 of the server-side execution time)."""
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            sql, params = candidate_sql(engine, blinds[:1])
            for _ in range(2):  # warm
                conn.exec_driver_sql(sql, params).fetchall()
            plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)]
            times, rows = [], []
            for b in blinds:
                sql, params = candidate_sql(engine, [b])
                out = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params).scalar()
                top = out[0]
                times.append(top["Execution Time"])
                rows.append(top["Plan"].get("Actual Rows", 0))
            sizes = dict(conn.exec_driver_sql(
                "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname IN "
                "('petitions', 'petitioners', 'ix_petitioners_id_blind_at')").fetchall())
    finally:
        engine.dispose()
    times.sort()
    return {"plan": plan, "uses_blind_index": any("ix_petitioners_id_blind_at" in ln for ln in plan),
            "seq_scan": any("Seq Scan" in ln for ln in plan),
            "exec_ms_p50": statistics.median(times), "exec_ms_p99": times[min(len(times) - 1, int(len(times) * .99))],
            "queries": len(times), "candidates_mean": sum(rows) / len(rows), "relation_bytes": sizes}


def after_run_counts(url: str, prefix: str) -> dict:
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT count(*), count(repeat_of) FROM petitions WHERE system = 'bench-intake' "
                "AND county_no LIKE %(p)s", {"p": prefix + "%"}).one()
            outbox = dict(conn.exec_driver_sql("SELECT status, count(*) FROM outbox GROUP BY status").fetchall())
            total = conn.exec_driver_sql("SELECT count(*) FROM petitions").scalar()
    finally:
        engine.dispose()
    return {"registered": row[0], "flagged_repeat": row[1], "outbox": outbox, "petitions_total": total}


# -- profile --------------------------------------------------------------------------------------

def pyspy_binary() -> str | None:
    found = shutil.which("py-spy")
    if found:
        return found
    for cand in (Path(sys.prefix) / "bin" / "py-spy", Path("/tmp/xf_pyspy/bin/py-spy")):
        if cand.exists():
            return str(cand)
    return None


def _frame_key(fr: str) -> str:
    fn, _, loc = fr.partition(" (")
    loc = loc.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in loc:
            loc = loc.split(marker, 1)[1]
    return f"{fn} ({loc})"


#: Leaf frames that mean "this thread waits for PostgreSQL / Redis / a client" rather than computing.
WAIT_LEAVES = ("Connection.wait (psycopg/", "SocketBuffer._read_from_socket (redis/", "EpollSelector.select",
               "Condition.wait (threading", "wait_conn", "_read_from_socket")


#: Phases of a registration, for the CPU breakdown: the first whose marker is in the stack wins.
PHASES = (
    ("outbox relay (publish to Redis, mark published)", ("OutboxRelay.",)),
    ("marshmallow Schema() construction per request", ("Schema.__init__ (marshmallow",)),
    ("ORM flush (INSERT petition, petitioner, history, outbox)", ("Session._flush",)),
    ("one-statement writes (petition, petitioners, history, outbox)", ("write (intake_svc/pgwrite",)),
    ("Core inserts (petition, petitioners, history)", ("register_petition (intake_svc/service.py);Session.execute",)),
    ("repeat detection (candidate query + matcher)", ("detect (intake_svc/detection",)),
    ("display number upsert + candidate query (one statement)", ("_number_and_candidates",)),
    ("repeat detection (matcher)", ("judge (intake_svc/detection",)),
    ("display number upsert", ("next_display_no",)),
    ("duplicate check by county_no", ("find_by_county_no",)),
    ("commit", ("Session.commit", "unit_of_work (shared/db")),
    ("request validation (PetitionInSchema.load)", ("Schema.load (marshmallow", "Schema._do_load")),
    ("response (petition_view, PetitionOutSchema.dump, jsonify)", ("petition_view", "Schema.dump", "jsonify",
                                                                  "_dump (intake_svc/views")),
    ("PII seal/blind/open", ("PiiVault.",)),
    ("API key lookup", ("make_resolver",)),
    ("rate limit (Redis)", ("_limit (intake_svc/ratelimit",)),
    ("outbox emit (event envelope)", ("emit (shared/outbox", "outbox_rows (shared/outbox")),
    ("rest of register_petition / register_direct (rows, rules)", ("register_petition", "register_direct")),
    ("metrics, correlation id", ("observability", "prometheus")),
    ("gunicorn, Flask, webargs, other", ("",)),
)


def aggregate_profile(files: list[Path], top: int = 30) -> dict:
    """From py-spy raw (collapsed) stacks: inclusive and self shares per function, and the samples
    attributed to the deepest project frame (intake_svc/, shared/), split into waiting and computing."""
    inclusive, selfc, by_site_wait, by_site_cpu, phases = Counter(), Counter(), Counter(), Counter(), Counter()
    total = waiting = 0
    for f in files:
        for line in f.read_text(errors="replace").splitlines():
            stack, _, n = line.rpartition(" ")
            if not stack or not n.isdigit():
                continue
            n = int(n)
            keys = [_frame_key(fr) for fr in stack.split(";")]
            joined = ";".join(keys)
            phases[next(label for label, marks in PHASES if any(m in joined for m in marks))] += n
            total += n
            for k in set(keys):
                inclusive[k] += n
            selfc[keys[-1]] += n
            is_wait = any(w in keys[-1] for w in WAIT_LEAVES)
            waiting += n if is_wait else 0
            # the two deepest project frames: "caller > callee" (e.g. register_petition > next_display_no)
            proj = [k for k in keys if "(intake_svc/" in k or "(shared/" in k]
            site = " > ".join(proj[-2:]) if proj else "(outside project code: " + keys[min(len(keys) - 1, 6)] + ")"
            (by_site_wait if is_wait else by_site_cpu)[site] += n

    def pct(c: Counter, k: int = top) -> list:
        return [(key, round(100 * v / total, 1)) for key, v in c.most_common(k)] if total else []
    return {"samples": total, "waiting_pct": round(100 * waiting / total, 1) if total else None,
            "inclusive_pct": pct(inclusive), "self_pct": pct(selfc), "wait_sites_pct": pct(by_site_wait, 15),
            "cpu_sites_pct": pct(by_site_cpu, 20), "phases_pct": pct(phases, len(PHASES))}


def profile(procs: Procs, env: dict, headers: dict, bodies: Bodies, args, workdir: Path, tag: str,
            dbname: str) -> dict:
    spy = pyspy_binary()
    if spy is None:
        return {"error": "py-spy not found (pip install py-spy)"}
    base, proc = start_intake(procs, "intake-profile", env, args)
    try:
        url = f"{base}/intake/api/v1/petitions"
        warm_up("profile", url, bodies=bodies, headers=headers, args=args, tag=f"{tag}p")
        workers = _children(proc.pid)
        outs = [workdir / f"pyspy-{pid}.txt" for pid in workers]
        dur = max(3, int(args.profile_seconds) - 2)
        spies = [subprocess.Popen([spy, "record", "-p", str(pid), "-d", str(dur), "-r", "97", "-f", "raw",
                                   "-o", str(o), "--nonblocking", "--gil"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, start_new_session=True)
                 for pid, o in zip(workers, outs, strict=True)]
        import threading

        waits: Counter = Counter()
        stop = threading.Event()

        def sample_pg() -> None:  # what the database's active backends wait for, every 50 ms
            import psycopg

            with psycopg.connect(conninfo(PG_ADMIN_URL), autocommit=True) as conn:
                while not stop.wait(0.05):
                    for wt, we, q in conn.execute(
                            "SELECT coalesce(wait_event_type, 'CPU'), coalesce(wait_event, '-'), "
                            "left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity "
                            "WHERE datname = %s AND state = 'active'", (dbname,)):
                        waits[f"{wt}:{we} | {q}"] += 1
        sampler = threading.Thread(target=sample_pg, daemon=True)
        sampler.start()
        try:
            load = wrk(url, bodies=bodies, headers=headers, seconds=args.profile_seconds, clients=args.clients,
                       threads=args.wrk_threads, prefix=f"{tag}pm")
        finally:
            stop.set()
            sampler.join(5)
        errs = []
        for s in spies:
            try:
                _, err = s.communicate(timeout=30)
                if s.returncode:
                    errs.append(err.decode(errors="replace")[-500:])
            except subprocess.TimeoutExpired:
                os.killpg(s.pid, signal.SIGKILL)
                s.wait()
                errs.append("py-spy timed out")
        result = aggregate_profile([o for o in outs if o.exists()])
        n_waits = sum(waits.values()) or 1
        result["pg_active_backends"] = [(k, round(100 * v / n_waits, 1)) for k, v in waits.most_common(15)]
        result.update(load_during_profile={k: load[k] for k in ("req_per_s", "p50_ms", "p99_ms")},
                      pyspy_errors=errs, raw_files=[str(o) for o in outs])
        return result
    finally:
        procs.stop("intake-profile")


# -- report ---------------------------------------------------------------------------------------

def table(res: dict) -> str:
    rows = [("baseline (bare Flask, before)", res.get("baseline_before")),
            ("baseline (bare Flask, after)", res.get("baseline_after")),
            (f"intake @ {res['params']['small']:,} existing", res.get("intake_small")),
            (f"intake @ {res['params']['existing']:,} existing", res.get("intake_large")),
            ("  diagnostic: @ large, all Henan", res.get("intake_spread"))]
    head = (f"{'target':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6} "
            f"{'srv cores':>9} {'pg cores':>8} {'wrk cores':>9} {'machine':>7} {'srv cpu ms/req':>14} "
            f"{'pg cpu ms/req':>13}")
    lines = [head, "-" * len(head)]
    for label, r in rows:
        if not r:
            continue
        if "error" in r:
            lines.append(f"{label:<34} FAILED: {r['error'][:80]}")
            continue
        lines.append(f"{label:<34} {r['req_per_s']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                     f"{r['max_ms']:>8.1f} {r['errors']:>6} {r['server_cores']:>9.2f} {r['pg_cores']:>8.2f} "
                     f"{r['client_cores']:>9.2f} {r['machine_busy_cores']:>7.2f} "
                     f"{1000 * r['server_cores'] / max(r['req_per_s'], 1e-9):>14.2f} "
                     f"{1000 * r['pg_cores'] / max(r['req_per_s'], 1e-9):>13.2f}")
    s = res.get("summary")
    if s:
        lines.append("")
        lines.append(f"baseline req/s (mean of before/after): {s['baseline_rps']:.1f}")
        lines.append(f"ratio intake@{res['params']['small']:,} / baseline: {s['ratio_small']:.2f}")
        lines.append(f"ratio intake@{res['params']['existing']:,} / baseline: {s['ratio_large']:.2f}   "
                     f"(target >= {TARGET_RATIO:.2f}); against the faster baseline phase alone "
                     f"{s['ratio_large_vs_faster_baseline']:.2f}")
        if s.get("ratio_spread") is not None:
            lines.append(f"diagnostic (same large table, new petitioners over all Henan counties): ratio "
                         f"{s['ratio_spread']:.2f} — not the target's figure")
        lines.append(f"intake@{res['params']['existing']:,} / intake@{res['params']['small']:,} rate: "
                     f"{s['large_vs_small']:.2f}")
        lines.append(f"target (>= {TARGET_RATIO:.0%} of baseline and p99 < {TARGET_P99_MS:g} ms at "
                     f"{res['params']['existing']:,}): {'MET' if s['target_met'] else 'NOT MET'} "
                     f"(ratio {'ok' if s['ratio_ok'] else 'missed'}, p99 {'ok' if s['p99_ok'] else 'missed'})")
    for key in ("small", "large"):
        e = res.get(f"explain_{key}")
        if e and "plan" in e:
            lines.append(f"detection query @ {res['params'][key if key == 'small' else 'existing']:,}: "
                         f"blind index {'used' if e['uses_blind_index'] else 'NOT used'}, "
                         f"seq scan {'YES' if e['seq_scan'] else 'no'}, exec p50 {e['exec_ms_p50']:.3f} ms, "
                         f"p99 {e['exec_ms_p99']:.3f} ms over {e['queries']} people "
                         f"({e['candidates_mean']:.1f} candidates each)")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.pg == "own":  # the same command again, against a server of its own (bench/pgserver.py)
        from bench.pgserver import rerun_under_own_server

        return rerun_under_own_server(__file__, argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2
    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from bench.intake import baseline_app
    from bench.intake.data import World, baseline_bodies, fill, intake_bodies
    from intake_svc.pii import PiiVault
    from shared.config import Settings
    from shared.migrations import upgrade

    t_start = time.monotonic()
    tag = uuid.uuid4().hex[:8]
    names = {"small": f"xfb_intake_{tag}_small", "large": f"xfb_intake_{tag}_large",
             "baseline": f"xfb_intake_{tag}_baseline"}
    base_url = make_url(PG_ADMIN_URL)
    urls = {k: base_url.set(database=v).render_as_string(hide_password=False) for k, v in names.items()}
    namespaces = {k: f"xfb-intake-{tag}-{k}" for k in ("small", "large")}
    results: dict = {"params": {k: v for k, v in vars(args).items()}, "started_at": datetime.now(timezone.utc)
                     .isoformat(), "machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
                     "errors": {}}
    workdir = Path(tempfile.mkdtemp(prefix="xfb-intake-"))
    procs = Procs(workdir / "logs")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    rds = redis.Redis.from_url(REDIS_URL)
    created: list[str] = []
    client_ids: list[str] = []
    try:
        rds.ping()
        with admin.connect() as conn:
            results["postgres"] = server_settings(conn)
            log("PostgreSQL: " + ", ".join(f"{k} {v}" for k, v in results["postgres"].items()))
            for name in names.values():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
                created.append(name)
        settings = Settings(secret_key=SECRET)
        vault = PiiVault(settings)
        world = World()
        baseline_app.create_schema(urls["baseline"])
        fills = {}
        for key, n in (("small", args.small), ("large", args.existing)):
            upgrade("intake", settings.replace(database_urls={"intake": urls[key]}))
            log(f"filling {names[key]} with {n:,} petitions (COPY) ...")
            f = fill(conninfo(urls[key]), n, vault, world, log=log)
            fills[key] = f
            log(f"filled {n:,} petitions + {f.petitioners:,} petitioners ({f.people:,} people) in {f.seconds:.1f}s "
                f"(generate+COPY {f.gen_copy_seconds:.1f}s, indexes+FKs {f.index_seconds:.1f}s, "
                f"VACUUM ANALYZE {f.vacuum_seconds:.1f}s); {len(f.repeat_people):,} known people for the load")
            results[f"fill_{key}"] = {k: v for k, v in vars(f).items() if k not in ("repeat_people", "sample_blinds")}

        # bodies: enough for the fastest target (cycled with fresh county_no if exceeded)
        n_bodies = 40_000
        bodies = {}
        # the same number of known people at both sizes, so the load (and each person's candidate count)
        # has the same shape; only the table size differs
        known = min(len(fills["small"].repeat_people), len(fills["large"].repeat_people))
        for key in ("small", "large"):
            b, repeats = intake_bodies(world, fills[key].repeat_people[:known], n_bodies,
                                       repeat_share=args.repeat_share, seed=11)
            bodies[key] = write_bodies(workdir / f"bodies-{key}.txt", b)
            results[f"bodies_{key}"] = {"count": len(b), "from_known_people": repeats, "known_people": known}
        b, _ = intake_bodies(world, fills["large"].repeat_people[:known], n_bodies, repeat_share=args.repeat_share,
                             seed=12, new_base=7_000_000, counties=world.nanyang + world.henan)
        bodies["spread"] = write_bodies(workdir / "bodies-spread.txt", b)
        bodies["baseline"] = write_bodies(workdir / "bodies-baseline.txt", baseline_bodies(world, 80_000))

        keys = {}
        for key in ("small", "large"):
            client_id, secret = create_api_key(urls[key], f"bench-{tag}-{key}")
            client_ids.append(client_id)
            keys[key] = secret
        client_id, keys["spread"] = create_api_key(urls["large"], f"bench-{tag}-spread", jurisdiction="410000")
        client_ids.append(client_id)

        def run_baseline(label: str) -> None:
            try:
                base, proc = start_baseline(procs, label, urls["baseline"], args)
                meter = CpuMeter(proc.pid, conninfo(PG_ADMIN_URL), names["baseline"])
                results[label] = measure(label, f"{base}/register", bodies=bodies["baseline"], headers={},
                                         args=args, meter=meter, tag=f"{tag}{label[-1]}")
            except Exception as exc:
                traceback.print_exc()
                print(procs.tail(label))
                results[label] = {"error": f"{type(exc).__name__}: {exc}"}
                results["errors"][label] = results[label]["error"]
            finally:
                procs.stop(label)

        def run_intake(key: str, db: str | None = None) -> None:
            label, db = f"intake_{key}", db or key
            try:
                env = intake_env(workdir, urls[db], namespaces[db], args.relay)
                base, proc = start_intake(procs, label, env, args)
                relay = (start_relay_worker(procs, f"{label}-relay", env),) if args.relay == "worker" else ()
                meter = CpuMeter(proc.pid, conninfo(PG_ADMIN_URL), names[db], tuple(r.pid for r in relay))
                results[label] = measure(label, f"{base}/intake/api/v1/petitions", bodies=bodies[key],
                                         headers={"X-API-Key": keys[key]}, args=args, meter=meter, tag=f"{tag}{key}")
                time.sleep(2.0)  # let the relay publish the tail
                results[label]["after"] = after_run_counts(urls[db], f"{tag}{key}")
                log(f"{label}: {results[label]['after']}")
            except Exception as exc:
                traceback.print_exc()
                print(procs.tail(label))
                results[label] = {"error": f"{type(exc).__name__}: {exc}"}
                results["errors"][label] = results[label]["error"]
            finally:
                procs.stop(label)
                procs.stop(f"{label}-relay")

        run_baseline("baseline_before")
        run_intake("small")
        run_intake("large")
        if not args.no_spread:
            run_intake("spread", db="large")
        run_baseline("baseline_after")

        for key in ("small", "large"):
            try:
                results[f"explain_{key}"] = explain_and_time(urls[key], fills[key].sample_blinds)
            except Exception as exc:
                traceback.print_exc()
                results[f"explain_{key}"] = {"error": f"{type(exc).__name__}: {exc}"}

        bb, ba, big, small = (results.get(k) or {} for k in ("baseline_before", "baseline_after", "intake_large",
                                                               "intake_small"))
        if all("req_per_s" in r for r in (bb, ba, big, small)):
            brps = (bb["req_per_s"] + ba["req_per_s"]) / 2
            s = {"baseline_rps": brps, "ratio_large": big["req_per_s"] / brps, "ratio_small": small["req_per_s"] / brps,
                 "ratio_large_vs_faster_baseline": big["req_per_s"] / max(bb["req_per_s"], ba["req_per_s"]),
                 "large_vs_small": big["req_per_s"] / small["req_per_s"],
                 "ratio_ok": big["req_per_s"] / brps >= TARGET_RATIO, "p99_ok": big["p99_ms"] < TARGET_P99_MS,
                 "no_errors": not (big["errors"] or small["errors"] or bb["errors"] or ba["errors"])}
            s["target_met"] = s["ratio_ok"] and s["p99_ok"] and s["no_errors"]
            spread = results.get("intake_spread") or {}
            s["ratio_spread"] = spread["req_per_s"] / brps if "req_per_s" in spread else None
            results["summary"] = s
        missed = not results.get("summary", {}).get("target_met", False)
        if args.profile == "always" or (args.profile == "auto" and missed):
            log("profiling intake workers at the large table (py-spy) ...")
            try:
                env = intake_env(workdir, urls["large"], namespaces["large"], args.relay)
                if args.relay == "worker":
                    start_relay_worker(procs, "intake-profile-relay", env)
                results["profile"] = profile(procs, env, {"X-API-Key": keys["large"]}, bodies["large"], args,
                                             workdir, tag, names["large"])
            except Exception as exc:
                traceback.print_exc()
                results["profile"] = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        procs.stop_all()
        try:
            with admin.connect() as conn:
                for name in created:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
        try:
            deleted = 0
            for pattern in [f"{ns}*" for ns in namespaces.values()] + [f"*{cid}*" for cid in client_ids]:
                for key in rds.scan_iter(match=pattern, count=1000):
                    deleted += rds.delete(key)
            results["redis_keys_deleted"] = deleted
            rds.close()
        except Exception as exc:  # report, keep cleaning
            print(f"redis cleanup failed: {exc!r}", file=sys.stderr)
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["elapsed_seconds"] = time.monotonic() - t_start
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "intake.json").write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
        if args.keep:
            print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    p = results["params"]
    print(f"\nxinfang intake bench: {p['clients']} clients (wrk, {p['wrk_threads']} thread), {p['seconds']:g}s "
          f"measured after {p['warmup']:g}s warm-up, gunicorn {p['workers']} workers x {p['threads']} threads, "
          f"{results['machine']['cpus']} CPUs, loadavg {results['machine']['loadavg_start'][0]:.2f} -> "
          f"{results['machine']['loadavg_end'][0]:.2f}, {results['elapsed_seconds']:.0f}s total\n")
    for key in ("small", "large"):
        f = results.get(f"fill_{key}")
        if f:
            print(f"fill {f['n']:,}: {f['seconds']:.1f}s (generate+COPY {f['gen_copy_seconds']:.1f}s, indexes "
                  f"{f['index_seconds']:.1f}s, VACUUM ANALYZE {f['vacuum_seconds']:.1f}s)")
    print()
    print(table(results))
    for key in ("small", "large"):
        e = results.get(f"explain_{key}")
        if e and "plan" in e:
            print(f"\nEXPLAIN (ANALYZE, BUFFERS) detection candidates @ {key}:")
            print("\n".join("  " + ln for ln in e["plan"]))
    prof = results.get("profile")
    if prof and "inclusive_pct" in prof:
        print(f"\npy-spy --gil ({prof['samples']} samples of the GIL-holding thread, i.e. Python CPU time of the "
              f"intake workers @ large; during it: {prof['load_during_profile']}) — by phase:")
        for k, v in prof["phases_pct"]:
            print(f"  {v:5.1f}%  {k}")
        print("inclusive % by function:")
        for k, v in prof["inclusive_pct"][:25]:
            print(f"  {v:5.1f}%  {k}")
        print("self %:")
        for k, v in prof["self_pct"][:15]:
            print(f"  {v:5.1f}%  {k}")
        print(f"waiting (psycopg/redis/select leaf: {prof['waiting_pct']}% of samples), by deepest project frames:")
        for k, v in prof["wait_sites_pct"]:
            print(f"  {v:5.1f}%  {k}")
        print("PostgreSQL active backends of the database, sampled every 50 ms (wait event | query):")
        for k, v in prof.get("pg_active_backends", []):
            print(f"  {v:5.1f}%  {k}")
        print("computing, by deepest project frames:")
        for k, v in prof["cpu_sites_pct"]:
            print(f"  {v:5.1f}%  {k}")
    elif prof:
        print(f"\nprofile: {prof}")
    print(f"\nJSON: {RESULTS / 'intake.json'}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
