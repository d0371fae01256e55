"""End-to-end latency of the thin slice: POST accepted -> 交办通知 in the unit's inbox.

Two deployments, driven the same way from this process over loopback HTTP:
  embedded     ``xinfang up`` (EmbeddedSystem + waitress, SQLite, in-process broker) in its own process,
               so the load generator does not share a GIL with the system under test;
  distributed  ``xinfang serve intake`` + four ``xinfang worker`` processes on PostgreSQL + Redis.
Latency is read back from the databases afterwards (bench/traces.py), never polled.
"""
from __future__ import annotations

import os
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import requests

from bench.common import free_port, ms, paced, pg_databases, summary
from bench.traces import STAGES, collect, count_notices, outbox_messages, seconds, stage_seconds
from shared.config import SERVICES, Settings
from shared.identity import id_check_char
from tests.helpers import SECRET, petition_body, token_for
from tests.stack import DistributedStack, stack_env

#: Settings shared by both deployments: production defaults, except quiet logs and no sweeps mid-run.
COMMON_ENV = {"XINFANG_LOG_LEVEL": "WARNING", "XINFANG_SWEEP_INTERVAL_SECONDS": "3600",
              "XINFANG_CLOCK_CONTROL": "0"}
#: The distributed stack with production broker tuning (tests/stack.py shortens these for kill tests).
DISTRIBUTED_ENV = {"XINFANG_REDIS_HEARTBEAT_MS": "60000", "XINFANG_REDIS_MAINTENANCE_CHANCE": "1000"}


def petitioner(i: int) -> dict:
    """A distinct, valid petitioner per petition (GB 11643 number, mobile), so that intake's
    repeat detection sees 1,000 people, not one person petitioning 1,000 times."""
    idx = i + 1  # the warm-up petition is -1
    first17 = "411302" + (date(1940, 1, 1) + timedelta(days=idx % 20000)).strftime("%Y%m%d") + f"{idx // 20000:03d}"
    return {"name": "张三", "id_number": first17 + id_check_char(first17), "phone": f"139{idx:08d}"}


def _poster(base: str, token: str, tag: str, same_petitioner: bool):
    url, headers = f"{base}/intake/api/v1/petitions", {"Authorization": f"Bearer {token}"}

    def send(i: int, session: requests.Session) -> str:
        body = petition_body(county_no=f"XFB-{tag}-{i:06d}")  # tests.helpers: always the same 张三
        if not same_petitioner:
            body["petitioners"] = [petitioner(i)]
        r = session.post(url, json=body, headers=headers, timeout=30)
        if r.status_code != 201:
            raise RuntimeError(f"POST {r.status_code}: {r.text[:200]}")
        return r.json()["id"]
    return send


def _await_notices(notify_url: str, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while (got := count_notices(notify_url)) < expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {got} of {expected} notices after waiting {timeout:.0f}s")
        time.sleep(0.5)
    return got


def measure(base: str, urls: dict[str, str], *, n: int, rate: float, threads: int, lead_in: int,
            same_petitioner: bool = False) -> dict:
    """Warm up, run ``lead_in + n`` paced POSTs, wait for every notice, verify, summarise the last ``n``."""
    token = token_for(Settings(secret_key=SECRET), role="registrar", jurisdiction="411300")
    tag = uuid.uuid4().hex[:6]
    send = _poster(base, token, tag, same_petitioner)
    with requests.Session() as warm:  # one petition through every process: all consumers are up
        send(-1, warm)
    _await_notices(urls["notify"], 1, 90)
    records, wall = paced(lead_in + n, rate, threads, send, requests.Session)
    errors = [r["error"] for r in records if r["error"]]
    if errors or len(records) != lead_in + n:
        raise AssertionError(f"{len(errors)} POSTs failed ({len(records)} recorded); first: {errors[:1]}")
    expected = 1 + lead_in + n
    _await_notices(urls["notify"], expected, timeout=120)
    time.sleep(1.0)  # a late duplicate would show up now
    traces = collect(urls)
    accepted = {r["result"] for r in records}
    bad = {pid: t["notices"] for pid, t in traces.items() if t["notices"] != 1}
    missing = accepted - set(traces)
    if bad or missing or len(traces) != expected:
        raise AssertionError(f"exactly-one-notice check failed: {len(traces)} petitions for {expected} POSTs, "
                             f"{len(missing)} accepted but unknown, notices!=1 for {len(bad)}: "
                             f"{list(bad.items())[:5]}")
    first = min(t["registered"] for t in traces.values())
    outbox = outbox_messages(urls, first)
    measured = [traces[r["result"]] for r in records[lead_in:]]
    e2e = [seconds(t, "registered", "noticed") for t in measured]
    cold = [seconds(traces[r["result"]], "registered", "noticed") for r in records[:lead_in]]
    per_stage = [stage_seconds(t) for t in measured]
    stages = {name: summary(ms([s[name] for s in per_stage if s[name] is not None])) for name in STAGES}
    window = (max(t["noticed"] for t in measured) - min(t["registered"] for t in measured)).total_seconds()
    post = [r["done"] - r["sent"] for r in records[lead_in:]]
    tenth = max(1, n // 10)  # drift: does it get slower as the tables fill up?
    drift = {"e2e_p50_first_10pct": summary(ms(e2e[:tenth]))["p50"], "e2e_p50_last_10pct": summary(ms(e2e[-tenth:]))["p50"],
             "post_p50_first_10pct": summary(ms(post[:tenth]))["p50"], "post_p50_last_10pct": summary(ms(post[-tenth:]))["p50"]}
    span = max(r["done"] for r in records) - min(r["sent"] for r in records)
    return {"e2e_ms": summary(ms(e2e)), "post_ms": summary(ms(post)), "stages_ms": stages, "drift_ms": drift,
            "offered_rate": rate, "submitted_per_s": len(records) / span,
            "sustained_petitions_per_s": n / window,
            "schedule_lag_max_ms": max(r["sent"] - r["scheduled"] for r in records) * 1000,
            "cold_start_max_ms": max(ms(cold)) if cold else None,
            "messages_per_petition": sum(outbox.values()) / expected, "outbox_rows": outbox,
            "petitions": n, "lead_in": lead_in, "same_petitioner": same_petitioner, "threads": threads, "verified_notices": expected}


def _fail_with_logs(stack: DistributedStack) -> None:
    print(f"--- process logs ({stack.log_dir}) ---\n{stack.logs()[-6000:]}")


def embedded(workdir: Path, **kw) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XINFANG_")}
    env.update(COMMON_ENV, XINFANG_DATA_DIR=str(workdir / "embedded-var"), XINFANG_SECRET_KEY=SECRET,
               PYTHONUNBUFFERED="1")
    stack = DistributedStack(env=env, log_dir=workdir / "embedded-logs")
    try:
        base = f"http://127.0.0.1:{free_port()}"
        stack._spawn("embedded", "up", "--host", "127.0.0.1", "--port", base.rsplit(":", 1)[1])
        stack.wait_http(f"{base}/intake/readyz", timeout=120)
        settings = stack.settings
        out = measure(base, {svc: settings.database_url(svc) for svc in SERVICES}, **kw)
        out["deployment"] = "xinfang up (1 process, waitress 8 threads, 4 worker threads, SQLite)"
        return out
    except BaseException:
        _fail_with_logs(stack)
        raise
    finally:
        stack.stop()


def distributed(workdir: Path, redis_url: str, *, poll_seconds: float = 0.2, namespace: str = "xfbench-thin",
                **kw) -> dict:
    with pg_databases() as urls:
        extra = {**COMMON_ENV, **DISTRIBUTED_ENV, "XINFANG_OUTBOX_POLL_SECONDS": str(poll_seconds)}
        tag = f"distributed-poll{poll_seconds:g}"
        env = stack_env(data_dir=workdir / f"{tag}-var", db_urls=urls, broker_url=redis_url, secret=SECRET,
                        namespace=namespace, extra=extra)
        stack = DistributedStack(env=env, log_dir=workdir / f"{tag}-logs")
        try:
            stack.migrate()
            base = stack.start_web("intake", free_port())
            for service in SERVICES:
                stack.start_worker(service)
            out = measure(base, urls, **kw)
            out["deployment"] = ("serve intake (gunicorn 1x8 threads) + 4 workers x 4 threads, "
                                 f"PostgreSQL + Redis, outbox poll {poll_seconds:g}s")
            out["outbox_poll_seconds"] = poll_seconds
            return out
        except BaseException:
            _fail_with_logs(stack)
            raise
        finally:
            stack.stop()
