"""notify_svc benchmark: ``python bench/notify/run.py [--notices 2000] [--workers 2] [--threads 4]``.

End to end in the distributed mode (PostgreSQL + Redis, ``xinfang worker notify`` processes as
docker-compose runs them): ``notice.requested`` messages are put on the notify queue; each worker
records the notice in the inbox and plans its e-mail delivery in the consumer transaction, then
its ``notify.deliver`` job sends the e-mail over SMTP to a local aiosmtpd server (started here).

Prints: notices per second (first request → last e-mail accepted), p50/p95 from request to inbox
row (``notices.created_at``) and from request to e-mail accepted; and, in the same run, the SMTP
server's own acceptance ceiling from a bare smtplib client (one connection per message, as notify
sends, and one connection for all), with the ratio.  Writes ``bench/results/notify.json``.
Needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379 (``XINFANG_BENCH_PG_URL`` /
``XINFANG_BENCH_REDIS_URL``).
"""
from __future__ import annotations

import argparse
import json
import smtplib
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

from bench.common import free_port, pg_databases, redis_namespace, summary  # noqa: E402

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


def run(n: int, workers: int, threads: int, workdir: Path) -> dict:
    from aiosmtpd.controller import Controller
    from sqlalchemy import create_engine, func, select, text

    from notify_svc.models import Notice
    from shared.config import Settings
    from shared.contracts import NoticeRequested, dump_envelope, envelope_for
    from tests.stack import DistributedStack, stack_env

    sink = Sink()
    smtp_port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    namespace = f"xfbench-notify-{uuid.uuid4().hex[:6]}"
    out: dict = {"notices": n, "workers": workers, "threads_per_worker": threads}
    try:
        with pg_databases() as urls, redis_namespace(namespace) as redis_url:
            env = stack_env(data_dir=workdir / "var", db_urls=urls, broker_url=redis_url, secret=SECRET,
                            namespace=namespace, extra={"XINFANG_NOTIFY_SMTP_HOST": "127.0.0.1",
                                                        "XINFANG_NOTIFY_SMTP_PORT": str(smtp_port),
                                                        "XINFANG_NOTIFY_SMTP_FROM": "xinfang@bench.example"})
            stack = DistributedStack(env=env, log_dir=workdir / "logs")
            settings = Settings.from_env(env)
            from shared.migrations import upgrade

            upgrade("notify", settings)
            # the directory copy: one unit per 50 notices, each with an e-mail address
            from notify_svc import service
            from notify_svc.app import build_runtime
            from shared.broker import make_broker
            from shared.contracts import DirectoryChanged

            runtime = build_runtime(settings, broker=make_broker(settings))
            units = [{"id": f"411302-b{i:04d}", "name": f"基准单位{i}", "kind": "bureau", "level": "county",
                      "region_code": "411302", "parent_id": None,
                      "contacts": {"email": f"u{i}@bench.example"}} for i in range(max(1, n // 50))]
            with runtime.uow() as s:
                service.copy_contacts(s, DirectoryChanged(version=1, changed_at=datetime.now(timezone.utc),
                                                          units=units))
            actor = runtime.broker.get_actor("notify.notice_requested")
            bodies = []
            for i in range(n):
                unit = units[i % len(units)]
                payload = NoticeRequested(
                    notice_type="assignment", dedupe_key=f"assignment:bench-{i}:unit:{unit['id']}:1",
                    recipient_kind="unit", recipient_id=unit["id"], recipient_name=unit["name"],
                    subject_id=f"bench-{i}", context={
                        "display_no": f"4113020000{i:08d}", "region_code": "411302", "unit_name": unit["name"],
                        "category": "城乡建设", "request_text": "小区外墙脱落，多次反映无人维修",
                        "assigned_at": "2026-11-23T02:00:00+00:00", "due_at": "2026-12-23T09:59:59+00:00",
                        "deadline_basis": "《信访工作条例》第三十五条"})
                bodies.append((payload.dedupe_key, dump_envelope(envelope_for(
                    payload, id=uuid.uuid4().hex, occurred_at=datetime.now(timezone.utc), producer="bench",
                    correlation_id=f"bench-{i}"))))
            for w in range(workers):
                stack.start_worker("notify", name=f"notify-{w}", threads=threads)
            time.sleep(4.0)  # workers booted
            sent_at: dict[str, float] = {}
            t0 = time.time()
            for key, body in bodies:
                sent_at[key] = time.time()
                actor.send(body)
            submitted = time.time()
            deadline = time.time() + max(120.0, n / 5)
            while len(sink.accepted) < n and time.time() < deadline:
                time.sleep(0.2)
            t_end = max(sink.accepted.values()) if sink.accepted else time.time()
            engine = create_engine(urls["notify"])
            with engine.connect() as conn:
                rows = conn.execute(select(Notice.dedupe_key, Notice.created_at, Notice.id)).all()
                status = dict(conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status")).all())
                inbox_count = conn.execute(select(func.count()).select_from(Notice)).scalar()
            engine.dispose()
            stack.stop()
            runtime.close()
            inbox_lat = [r.created_at.timestamp() - sent_at[r.dedupe_key] for r in rows if r.dedupe_key in sent_at]
            mail_lat = [sink.accepted[f"<{r.id}@xinfang.notify>"] - sent_at[r.dedupe_key] for r in rows
                        if f"<{r.id}@xinfang.notify>" in sink.accepted]
            out.update({
                "submit_seconds": submitted - t0, "inbox_rows": inbox_count, "emails_accepted": len(sink.accepted),
                "smtp_messages_total": sink.count, "delivery_status": status,
                "end_to_end_seconds": t_end - t0,
                "notices_per_second": len(sink.accepted) / (t_end - t0) if sink.accepted else 0.0,
                "inbox_latency_ms": {k: (v * 1000 if isinstance(v, float) else v)
                                     for k, v in summary(inbox_lat).items()},
                "email_latency_ms": {k: (v * 1000 if isinstance(v, float) else v)
                                     for k, v in summary(mail_lat).items()},
            })
        m = min(n, 1000)
        out["smtp_ceiling_per_connection"] = bare_ceiling("127.0.0.1", smtp_port, m, per_connection=True)
        out["smtp_ceiling_one_connection"] = bare_ceiling("127.0.0.1", smtp_port, m, per_connection=False)
        out["ratio_vs_per_connection_ceiling"] = out["notices_per_second"] / out["smtp_ceiling_per_connection"]
    finally:
        controller.stop()
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notices", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4, help="Dramatiq threads per worker process")
    args = ap.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="xfbench-notify-"))
    result = run(args.notices, args.workers, args.threads, workdir)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "notify.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    r = result
    print(f"\nnotify bench: {r['notices']} notices, {r['workers']} worker processes × {r['threads_per_worker']} threads")
    print(f"  inbox rows {r['inbox_rows']}, e-mails accepted {r['emails_accepted']} "
          f"(SMTP messages total {r['smtp_messages_total']}), deliveries {r['delivery_status']}")
    print(f"  end to end: {r['notices_per_second']:.1f} notices/s ({r['end_to_end_seconds']:.1f}s)")
    il, el = r["inbox_latency_ms"], r["email_latency_ms"]
    print(f"  request → inbox: p50 {il['p50']:.0f} ms, p95 {il['p95']:.0f} ms, max {il['max']:.0f} ms")
    print(f"  request → e-mail accepted: p50 {el['p50']:.0f} ms, p95 {el['p95']:.0f} ms")
    print(f"  bare smtplib ceiling: {r['smtp_ceiling_per_connection']:.0f} msg/s (a connection per message), "
          f"{r['smtp_ceiling_one_connection']:.0f} msg/s (one connection)")
    print(f"  ratio notify / bare (connection per message): {r['ratio_vs_per_connection_ceiling']:.2f}")
    print(f"JSON: {RESULTS / 'notify.json'}")
    return 0 if r["emails_accepted"] == r["notices"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
