"""xinfang bench runner: ``python bench/run.py [all|thin_slice|broker] [--petitions 1000] [--rate 25]``.

Runs the scenarios (bench/broker.py, bench/thin_slice.py), prints the figures side by side
with their baselines and writes them to bench/results/latest.json.  See bench/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench import broker, thin_slice  # noqa: E402
from bench.common import redis_namespace  # noqa: E402
from bench.report import table  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?", default="all", choices=("all", "thin_slice", "broker"))
    ap.add_argument("--petitions", type=int, default=1000, help="measured petitions per deployment")
    ap.add_argument("--rate", type=float, default=25.0, help="open-loop submissions per second")
    ap.add_argument("--threads", type=int, default=8, help="client threads of the open-loop submitter")
    ap.add_argument("--lead-in", type=float, default=2.0,
                    help="seconds of extra traffic before the measured petitions (excluded from figures)")
    ap.add_argument("--ceiling-messages", type=int, default=20_000)
    ap.add_argument("--poll", default="0.2", help="XINFANG_OUTBOX_POLL_SECONDS for the distributed stack; "
                                                  "comma list runs it once per value, e.g. 0.2,1.0")
    ap.add_argument("--modes", default="embedded,distributed", help="thin-slice deployments to run")
    ap.add_argument("--same-petitioner", action="store_true",
                    help="every petition from the one petitioner of tests.helpers.petition_body (repeat "
                         "detection's worst case) instead of a distinct petitioner each")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (process logs, SQLite files)")
    ap.add_argument("--flushdb", action="store_true",
                    help="FLUSHDB Redis DB 14 before/after each scenario instead of deleting only the bench's "
                         "own keys (only when no other bench shares DB 14)")
    return ap.parse_args(argv)


def _interrupt(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")  # unwind: every finally stops processes, drops databases


def main(argv: list[str]) -> int:
    args = parse(argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    lead_in = int(round(args.lead_in * args.rate))
    results: dict = {"params": {**vars(args), "lead_in_messages": lead_in},
                     "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                 "loadavg_start": os.getloadavg()},
                     "started_at": datetime.now(timezone.utc).isoformat(), "errors": {}}
    workdir = Path(tempfile.mkdtemp(prefix="xfbench-"))
    t0 = time.monotonic()

    def attempt(name: str, fn, *a, **kw):
        print(f"[{time.monotonic() - t0:6.1f}s] {name} ...", flush=True)
        try:
            out = fn(*a, **kw)
            print(f"[{time.monotonic() - t0:6.1f}s] {name} done", flush=True)
            return out
        except Exception as exc:
            traceback.print_exc()
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
            return {"error": results["errors"][name]}

    try:
        if args.scenario in ("all", "broker"):
            with redis_namespace(broker.NAMESPACE, flushdb=args.flushdb) as url:
                results["broker"] = attempt("broker baselines", broker.run, url,
                                            ceiling_messages=args.ceiling_messages,
                                            floor_messages=args.petitions, rate=args.rate, lead_in=lead_in)
        if args.scenario in ("all", "thin_slice"):
            kw = {"n": args.petitions, "rate": args.rate, "threads": args.threads, "lead_in": lead_in,
                  "same_petitioner": args.same_petitioner}
            modes = args.modes.split(",")
            thin: dict = {"distributed": {}}
            results["thin_slice"] = thin
            if "embedded" in modes:
                thin["embedded"] = attempt("thin slice: embedded", thin_slice.embedded, workdir, **kw)
            if "distributed" in modes:
                for poll in (float(v) for v in args.poll.split(",")):
                    namespace = f"xfbench-{uuid.uuid4().hex[:8]}"
                    with redis_namespace(namespace, flushdb=args.flushdb) as url:
                        thin["distributed"][f"poll={poll:g}s"] = attempt(
                            f"thin slice: PG+Redis poll={poll:g}s", thin_slice.distributed, workdir, url,
                            poll_seconds=poll, namespace=namespace, **kw)
    finally:
        results["machine"]["loadavg_end"] = os.getloadavg()
        results["elapsed_seconds"] = time.monotonic() - t0
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
        if args.keep:
            print(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    p = results["params"]
    print(f"\nxinfang bench: {args.scenario}, {p['petitions']} petitions at {p['rate']:g}/s "
          f"(+{lead_in} lead-in), {p['threads']} client threads, {results['machine']['cpus']} CPUs, "
          f"loadavg {results['machine']['loadavg_start'][0]:.2f} -> {results['machine']['loadavg_end'][0]:.2f}, "
          f"{results['elapsed_seconds']:.0f}s\n")
    print(table(results))
    print(f"\nJSON: {RESULTS / 'latest.json'}")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
