"""Profile notify's per-notice work in one process: ``python bench/notify/profile_worker.py [--notices 500]``.

What a worker process does per notice, in one thread so that cProfile sees all of it: the
``notify.notice_requested`` consumer (inbox row + delivery rows, on PostgreSQL) followed, after its
commit, by the inline send of its e-mail (pooled SMTP connection to a local aiosmtpd server) and the
record of the result.  Prints the wall
time per notice and the top functions by cumulative and own time; writes
``bench/results/notify-profile.prof`` (open with ``python -m pstats`` or snakeviz).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench" / "notify"]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, pg_databases  # noqa: E402
from bench.notify.run import Sink, notice_payload  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notices", type=int, default=500)
    ap.add_argument("--top", type=int, default=35)
    args = ap.parse_args(argv)

    import tempfile

    from aiosmtpd.controller import Controller
    from dramatiq.brokers.stub import StubBroker

    from notify_svc import channels, service
    from notify_svc.app import build_runtime
    from notify_svc.settings import NotifySettings
    from shared import broker as broker_mod
    from shared.config import Settings
    from shared.contracts import DirectoryChanged, dump_envelope, envelope_for
    from shared.migrations import upgrade

    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with pg_databases() as urls:
            settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="xfprof-")), database_urls=urls,
                                secret_key="bench-secret-key-0123456789abcdef")
            upgrade("notify", settings)
            cfg = NotifySettings.from_env({}, secret_key=settings.secret_key, smtp_host="127.0.0.1", smtp_port=port)
            runtime = build_runtime(settings, broker=StubBroker(), notify=cfg)
            units = [{"id": f"411302-b{i:04d}", "name": f"基准单位{i}", "kind": "bureau", "level": "county",
                      "region_code": "411302", "parent_id": None,
                      "contacts": {"email": f"u{i}@bench.example"}} for i in range(max(1, args.notices // 50))]
            with runtime.uow() as s:
                service.copy_contacts(s, DirectoryChanged(version=1, changed_at=datetime.now(timezone.utc),
                                                          units=units))
            consume = runtime.broker.get_actor("notify.notice_requested").fn
            bodies = []
            for i in range(args.notices):
                payload = notice_payload(i, units[i % len(units)])
                bodies.append(dump_envelope(envelope_for(payload, id=uuid.uuid4().hex,
                                                         occurred_at=datetime.now(timezone.utc), producer="bench",
                                                         correlation_id=f"bench-{i}")))
            runtime.extras[service.INLINE] = True  # as in a worker process: the consumer sends after its commit

            def work() -> None:
                for body in bodies:
                    token = broker_mod._message_id.set(uuid.uuid4().hex)
                    try:
                        consume(body)
                    finally:
                        broker_mod._message_id.reset(token)

            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.runcall(work)
            wall = time.perf_counter() - started
            runtime.close()
            channels.close_smtp_pools()
    finally:
        controller.stop()
    RESULTS.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(RESULTS / "notify-profile.prof"))
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())
    print(f"{args.notices} notices in one thread: {wall:.2f}s = {wall / args.notices * 1000:.2f} ms per notice "
          f"(under cProfile); e-mails accepted {len(sink.accepted)}")
    return 0 if len(sink.accepted) == args.notices else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
