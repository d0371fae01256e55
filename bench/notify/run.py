"""notify_svc benchmark: ``python bench/notify/run.py [--notices 500] [--rate 20 --duration 15] [--runs 3]``.

End to end in the distributed mode (PostgreSQL + Redis, ``xinfang worker notify`` processes as
docker-compose runs them): ``notice.requested`` messages are put on the notify queue; each worker
records the notice in the inbox and plans its e-mail delivery in the consumer transaction, then
sends the e-mail over SMTP to a local aiosmtpd server (started here).

Each run (fresh databases, fresh workers) has two phases:

* burst: ``--notices`` requests put on the queue at once; notices per second = requests / (first
  request → last e-mail accepted), and the (queueing-dominated) latencies;
* paced: ``--rate`` requests per second for ``--duration`` seconds (open loop), below saturation:
  p50/p95 from request to inbox row (``notices.created_at``) and from request to e-mail accepted;

then, in the same run with the workers stopped, the SMTP server's own acceptance ceiling from a bare
smtplib client (a connection per message, and one connection for all) and the ratios of the burst
throughput to both.  With ``--runs K`` the summary gives the median of each figure over the runs.
Writes ``bench/results/notify.json``.  Needs PostgreSQL at 127.0.0.1:5432 and Redis at
127.0.0.1:6379 (``XINFANG_BENCH_PG_URL`` / ``XINFANG_BENCH_REDIS_URL``).
"""
from __future__ import annotations

import argparse
import json
import smtplib
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench" / "notify"]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, paced, pg_databases, redis_namespace, summary  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"
RESULTS = ROOT / "bench" / "results"


class Sink:
    """aiosmtpd handler: remembers when each Message-ID was accepted."""

    def __init__(self) -> None:
        self.accepted: dict[str, float] = {}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, _server, _session, envelope):
        now = time.time()
        mid = ""
        for line in envelope.original_content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                mid = line.split(b":", 1)[1].strip().decode()
                break
            if not line:
                break
        with self.lock:
            self.count += 1
            self.accepted.setdefault(mid, now)
        return "250 OK"


def notice_payload(i: int, unit: dict):
    """The i-th benchmark request: an assignment notice (交办通知) to ``unit``."""
    from shared.contracts import NoticeRequested

    return NoticeRequested(
        notice_type="assignment", dedupe_key=f"assignment:bench-{i}:unit:{unit['id']}:1",
        recipient_kind="unit", recipient_id=unit["id"], recipient_name=unit["name"],
        subject_id=f"bench-{i}", context={
            "display_no": f"4113020000{i:08d}", "region_code": "411302", "unit_name": unit["name"],
            "category": "城乡建设", "request_text": "小区外墙脱落，多次反映无人维修",
            "assigned_at": "2026-11-23T02:00:00+00:00", "due_at": "2026-12-23T09:59:59+00:00",
            "deadline_basis": "《信访工作条例》第三十五条"})


def bare_ceiling(host: str, port: int, n: int, *, per_connection: bool) -> float:
    """Messages per second a bare smtplib client gets accepted by the same server."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bench@localhost", "sink@localhost", "基准测试：交办通知"
    msg.set_content("宛城区住房和城乡建设局：\n\n现将信访件交由你单位办理。\n" * 5, charset="utf-8")
    started = time.perf_counter()
    if per_connection:
        for i in range(n):
            msg.replace_header("Subject", f"基准测试 {i}") if i else None
            with smtplib.SMTP(host, port, timeout=10) as client:
                client.send_message(msg)
    else:
        with smtplib.SMTP(host, port, timeout=10) as client:
            for _ in range(n):
                client.send_message(msg)
    return n / (time.perf_counter() - started)


def _ms(values: list[float]) -> dict:
    return {k: (v * 1000 if isinstance(v, float) else v) for k, v in summary(values).items()}


def _wait_accepted(sink: "Sink", ids: list[str], timeout: float) -> float | None:
    """When the last of ``ids`` (Message-IDs) was accepted, or None after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        with sink.lock:
            missing = [i for i in ids if i not in sink.accepted]
        if not missing:
            return max(sink.accepted[i] for i in ids)
        time.sleep(0.1)
    return None


def run(n: int, workers: int, threads: int, rate: float, duration: float, workdir: Path) -> dict:
    from aiosmtpd.controller import Controller
    from sqlalchemy import create_engine, select, text

    from notify_svc import service
    from notify_svc.app import build_runtime
    from notify_svc.models import Notice
    from shared.broker import make_broker
    from shared.config import Settings
    from shared.contracts import DirectoryChanged, dump_envelope, envelope_for
    from shared.migrations import upgrade
    from tests.stack import DistributedStack, stack_env

    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    namespace = f"xfbench-notify-{uuid.uuid4().hex[:6]}"
    n_paced = int(rate * duration)
    out: dict = {"notices": n, "workers": workers, "threads_per_worker": threads,
                 "paced": {"rate": rate, "duration": duration, "notices": n_paced}}
    try:
        with pg_databases() as urls, redis_namespace(namespace) as redis_url:
            env = stack_env(data_dir=workdir / "var", db_urls=urls, broker_url=redis_url, secret=SECRET,
                            namespace=namespace, extra={"XINFANG_NOTIFY_SMTP_HOST": "127.0.0.1",
                                                        "XINFANG_NOTIFY_SMTP_PORT": str(smtp_port),
                                                        "XINFANG_NOTIFY_SMTP_FROM": "xinfang@bench.example"})
            stack = DistributedStack(env=env, log_dir=workdir / "logs")
            settings = Settings.from_env(env)
            upgrade("notify", settings)
            # the directory copy: one unit per 50 notices, each with an e-mail address
            runtime = build_runtime(settings, broker=make_broker(settings))
            units = [{"id": f"411302-b{i:04d}", "name": f"基准单位{i}", "kind": "bureau", "level": "county",
                      "region_code": "411302", "parent_id": None,
                      "contacts": {"email": f"u{i}@bench.example"}} for i in range(max(1, (n + n_paced) // 50))]
            with runtime.uow() as s:
                service.copy_contacts(s, DirectoryChanged(version=1, changed_at=datetime.now(timezone.utc),
                                                          units=units))
            actor = runtime.broker.get_actor("notify.notice_requested")
            bodies = []
            for i in range(n + n_paced):
                payload = notice_payload(i, units[i % len(units)])
                bodies.append((payload.dedupe_key, dump_envelope(envelope_for(
                    payload, id=uuid.uuid4().hex, occurred_at=datetime.now(timezone.utc), producer="bench",
                    correlation_id=f"bench-{i}"))))
            burst, steady = bodies[:n], bodies[n:]
            for w in range(workers):
                stack.start_worker("notify", name=f"notify-{w}", threads=threads)
            time.sleep(4.0)  # workers booted
            sent_at: dict[str, float] = {}

            # -- burst
            t0 = time.time()
            for key, body in burst:
                sent_at[key] = time.time()
                actor.send(body)
            submitted = time.time()
            engine = create_engine(urls["notify"])

            def message_ids(keys: list[str]) -> dict[str, str]:
                with engine.connect() as conn:
                    rows = conn.execute(select(Notice.dedupe_key, Notice.id)).all()
                wanted = set(keys)
                return {r.dedupe_key: f"<{r.id}@xinfang.notify>" for r in rows if r.dedupe_key in wanted}

            deadline = time.time() + max(120.0, n / 5)
            burst_keys = [k for k, _ in burst]
            while len(sink.accepted) < n and time.time() < deadline:
                time.sleep(0.2)
            t_end = _wait_accepted(sink, list(message_ids(burst_keys).values()), 1.0) or time.time()
            out["burst"] = {"submit_seconds": submitted - t0, "end_to_end_seconds": t_end - t0,
                            "notices_per_second": min(len(sink.accepted), n) / (t_end - t0)}

            # -- paced (below saturation)
            time.sleep(2.0)

            def send(i: int, _state) -> None:
                key, body = steady[i]
                sent_at[key] = time.time()
                actor.send(body)

            if n_paced:
                records, wall = paced(n_paced, rate, 4, send)
                out["paced"]["achieved_rate"] = n_paced / wall
                out["paced"]["send_errors"] = sum(1 for r in records if r["error"])
                steady_keys = [k for k, _ in steady]
                deadline = time.time() + max(60.0, n_paced / 5)
                while len(message_ids(steady_keys)) < n_paced and time.time() < deadline:
                    time.sleep(0.2)
                _wait_accepted(sink, list(message_ids(steady_keys).values()), 60.0)

            with engine.connect() as conn:
                rows = conn.execute(select(Notice.dedupe_key, Notice.created_at, Notice.id)).all()
                status = dict(conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status")).all())
            engine.dispose()
            stack.stop()
            runtime.close()

            def latencies(keys: set[str]) -> tuple[dict, dict]:
                mine = [r for r in rows if r.dedupe_key in keys]
                inbox = [r.created_at.timestamp() - sent_at[r.dedupe_key] for r in mine]
                mail = [sink.accepted[f"<{r.id}@xinfang.notify>"] - sent_at[r.dedupe_key] for r in mine
                        if f"<{r.id}@xinfang.notify>" in sink.accepted]
                return _ms(inbox), _ms(mail)

            out["burst"]["inbox_latency_ms"], out["burst"]["email_latency_ms"] = latencies(set(burst_keys))
            out["paced"]["inbox_latency_ms"], out["paced"]["email_latency_ms"] = latencies({k for k, _ in steady})
            out.update({"inbox_rows": len(rows), "emails_accepted": len(sink.accepted),
                        "smtp_messages_total": sink.count, "delivery_status": status})
        m = min(max(n, 200), 1000)
        out["smtp_ceiling_per_connection"] = bare_ceiling("127.0.0.1", smtp_port, m, per_connection=True)
        out["smtp_ceiling_one_connection"] = bare_ceiling("127.0.0.1", smtp_port, m, per_connection=False)
        e2e = out["burst"]["notices_per_second"]
        out["ratio_vs_one_connection_ceiling"] = e2e / out["smtp_ceiling_one_connection"]
        out["ratio_vs_per_connection_ceiling"] = e2e / out["smtp_ceiling_per_connection"]
    finally:
        controller.stop()
    return out


#: Figures summarised over the runs (median): (label, path in a run's result).
FIGURES = [
    ("burst notices/s", ("burst", "notices_per_second")),
    ("paced request→inbox p50 ms", ("paced", "inbox_latency_ms", "p50")),
    ("paced request→inbox p95 ms", ("paced", "inbox_latency_ms", "p95")),
    ("paced request→e-mail p50 ms", ("paced", "email_latency_ms", "p50")),
    ("paced request→e-mail p95 ms", ("paced", "email_latency_ms", "p95")),
    ("burst request→inbox p50 ms", ("burst", "inbox_latency_ms", "p50")),
    ("burst request→e-mail p50 ms", ("burst", "email_latency_ms", "p50")),
    ("bare ceiling, connection per message, msg/s", ("smtp_ceiling_per_connection",)),
    ("bare ceiling, one connection, msg/s", ("smtp_ceiling_one_connection",)),
    ("ratio burst / one-connection ceiling", ("ratio_vs_one_connection_ceiling",)),
    ("ratio burst / connection-per-message ceiling", ("ratio_vs_per_connection_ceiling",)),
]


def _get(result: dict, path: tuple):
    for part in path:
        result = result.get(part) if isinstance(result, dict) else None
    return result


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notices", type=int, default=500, help="requests of the burst phase")
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second of the paced phase (0 = none)")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of the paced phase")
    ap.add_argument("--runs", type=int, default=1, help="independent runs; the summary gives medians")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4, help="Dramatiq threads per worker process")
    args = ap.parse_args(argv)
    runs = []
    for k in range(args.runs):
        workdir = Path(tempfile.mkdtemp(prefix="xfbench-notify-"))
        runs.append(run(args.notices, args.workers, args.threads, args.rate, args.duration, workdir))
        r = runs[-1]
        print(f"run {k + 1}/{args.runs}: burst {r['burst']['notices_per_second']:.1f} notices/s; paced "
              f"{args.rate:g}/s inbox p50/p95 {_get(r, FIGURES[1][1]) or 0:.0f}/{_get(r, FIGURES[2][1]) or 0:.0f} ms, "
              f"e-mail p50/p95 {_get(r, FIGURES[3][1]) or 0:.0f}/{_get(r, FIGURES[4][1]) or 0:.0f} ms; bare "
              f"{r['smtp_ceiling_per_connection']:.0f} / {r['smtp_ceiling_one_connection']:.0f} msg/s", flush=True)
    medians = {label: statistics.median(v for v in (_get(r, path) for r in runs) if v is not None)
               for label, path in FIGURES}
    result = {"runs": runs, "median": medians,
              "settings": {"notices": args.notices, "rate": args.rate, "duration": args.duration,
                           "workers": args.workers, "threads": args.threads}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "notify.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    print(f"\nnotify bench: {args.runs} run(s); burst {args.notices} notices, paced {args.rate:g}/s for "
          f"{args.duration:g}s; {args.workers} worker processes × {args.threads} threads"
          + (" (medians)" if args.runs > 1 else ""))
    for label, value in medians.items():
        print(f"  {label:48s} {value:10.2f}")
    ok = all(r["emails_accepted"] == r["notices"] + r["paced"]["notices"] for r in runs)
    for r in runs:
        print(f"  inbox rows {r['inbox_rows']}, e-mails accepted {r['emails_accepted']} "
              f"(SMTP messages total {r['smtp_messages_total']}), deliveries {r['delivery_status']}")
    print(f"JSON: {RESULTS / 'notify.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
