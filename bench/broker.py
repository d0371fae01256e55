"""Baselines on the bench Redis (DB 14): the broker ceiling and the one-hop latency floor.

Both use a plain ``RedisBroker(namespace="xfbench")`` with actors declared on that
broker object (never the global broker) and one in-process ``dramatiq.Worker`` with
the same thread count and idle timeout as ``xinfang worker`` (4 threads, Dramatiq's
default 1 s worker_timeout, i.e. the same progressive poll backoff when a queue is empty).
"""
from __future__ import annotations

import itertools
import threading
import time

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from bench.common import ms, paced, summary

#: Same broker tuning as the distributed stack under test (the production defaults).
BROKER_TUNING = {"heartbeat_timeout": 60_000, "maintenance_chance": 1000}


#: Redis key namespace of the baselines (keys ``xfbench:*``; run.py deletes them before and after).
NAMESPACE = "xfbench"


def _broker(url: str) -> RedisBroker:
    return RedisBroker(url=url, namespace=NAMESPACE, **BROKER_TUNING)


def ceiling(url: str, *, messages: int = 20_000, threads: int = 4, timeout: float = 120.0) -> dict:
    """Enqueue ``messages`` no-op messages, then time one worker draining them."""
    broker = _broker(url)
    counter = itertools.count(1)
    finished = threading.Event()

    def noop() -> None:
        if next(counter) == messages:
            finished.set()

    actor = dramatiq.actor(noop, broker=broker, actor_name="xfbench_noop", queue_name="xfbench-ceiling",
                           max_retries=0)
    worker = None
    try:
        broker.flush_all()
        t0 = time.perf_counter()
        for _ in range(messages):
            actor.send()
        enqueue_s = time.perf_counter() - t0
        worker = dramatiq.Worker(broker, worker_threads=threads)
        t0 = time.perf_counter()
        worker.start()
        if not finished.wait(timeout):
            raise RuntimeError(f"broker ceiling: drained only {next(counter) - 1} of {messages} in {timeout}s")
        drain_s = time.perf_counter() - t0
    finally:
        if worker is not None:
            worker.stop(timeout=10_000)
        broker.flush_all()
        broker.close()
    return {"messages": messages, "threads": threads, "drain_seconds": drain_s,
            "msgs_per_s": messages / drain_s, "enqueue_msgs_per_s": messages / enqueue_s}


def floor(url: str, *, messages: int = 1000, rate: float = 25.0, threads: int = 4, lead_in: int = 50,
          timeout: float = 60.0) -> dict:
    """Enqueue → no-op actor start, paced at ``rate``/s: the latency of one broker hop.

    The first ``lead_in`` messages wake the idle consumer (whose poll backoff has grown to
    0.5–1 s) and are left out of the figures; their max is reported as ``cold_start_max``.
    """
    broker = _broker(url)
    total = lead_in + messages
    latencies: dict[int, float] = {}
    seen = itertools.count(1)
    finished = threading.Event()

    def hop(i: int, sent_at: float) -> None:
        latencies[i] = time.perf_counter() - sent_at
        if next(seen) == total:
            finished.set()

    actor = dramatiq.actor(hop, broker=broker, actor_name="xfbench_hop", queue_name="xfbench-hop",
                           max_retries=0)
    worker = dramatiq.Worker(broker, worker_threads=threads)
    try:
        broker.flush_all()
        worker.start()
        time.sleep(1.0)  # consumers up and idle, as a thin-slice worker between petitions
        records, wall = paced(total, rate, 2, lambda i, _s: actor.send(i, time.perf_counter()))
        errors = [r["error"] for r in records if r["error"]]
        if errors:
            raise RuntimeError(f"one-hop floor: {len(errors)} enqueue errors, first: {errors[0]}")
        if not finished.wait(timeout):
            raise RuntimeError(f"one-hop floor: only {len(latencies)} of {total} messages arrived")
    finally:
        worker.stop(timeout=10_000)
        broker.flush_all()
        broker.close()
    out = summary(ms([v for i, v in latencies.items() if i >= lead_in]))
    cold = ms([v for i, v in latencies.items() if i < lead_in])
    out.update({"rate": rate, "threads": threads, "achieved_rate": total / wall, "lead_in": lead_in,
                "cold_start_max": max(cold) if cold else None})
    return out


def run(url: str, *, ceiling_messages: int, floor_messages: int, rate: float, threads: int = 4,
        lead_in: int = 50) -> dict:
    return {"ceiling": ceiling(url, messages=ceiling_messages, threads=threads),
            "floor": floor(url, messages=floor_messages, rate=rate, threads=threads, lead_in=lead_in)}
