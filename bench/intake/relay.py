"""The outbox relay's two steps, former way against current, in one run: ``python bench/intake/relay.py``.

1. Claiming a batch on PostgreSQL while the outbox churns (rows written pending, then marked published,
   autovacuum off for the table, as between two autovacuum runs under load).  ``two-step``: the former
   ``SELECT … ORDER BY created_at LIMIT n FOR UPDATE SKIP LOCKED`` then ``UPDATE … WHERE id = ANY(…)``;
   ``one-statement``: the current ``WITH claimed AS MATERIALIZED (that SELECT) UPDATE … RETURNING …``.  Each round writes
   ``--per-claim`` pending rows and claims them, ``--claims`` rounds per contender, contenders alternating
   over ``--repeat`` passes; prints wall and PostgreSQL backend CPU per claim, early and late claims apart
   (the cost that grows with the dead index entries left since the last vacuum shows there).
2. Enqueueing to Redis: ``per-message``: ``RedisBroker.enqueue`` per message (one round trip each);
   ``pipeline``: ``shared.broker.enqueue_many`` (one pipeline per batch).  Process CPU and wall per
   message for batches of ``--batch`` messages of an outbox body's size.

Scratch database ``xfb_relay_<tag>`` and Redis namespace ``xfb-relay-<tag>``: both removed on every exit path.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench" / "intake"]
sys.path.insert(0, str(ROOT))

from bench.common import PG_ADMIN_URL, REDIS_URL  # noqa: E402
from bench.intake.run import _cpu_of, conninfo  # noqa: E402

TABLE = """CREATE TABLE outbox (id varchar(32) PRIMARY KEY, event_id varchar(32), message_type varchar(64),
  queue_name varchar(32), actor_name varchar(96), body text, status varchar(16), created_at timestamptz,
  published_at timestamptz, attempts int, last_error text) WITH (autovacuum_enabled = false);
CREATE INDEX ix_outbox_pending ON outbox (created_at) WHERE status = 'pending';
CREATE INDEX ix_outbox_published_at ON outbox (published_at);
CREATE INDEX ix_outbox_event_id ON outbox (event_id)"""
WRITE = """INSERT INTO outbox SELECT md5(random()::text), md5(random()::text), 'petition.registered', 'assign',
  'assign.petition_registered', %s, 'pending', clock_timestamp(), NULL, 0 FROM generate_series(1, %s)"""
ONE_STATEMENT = """WITH claimed AS MATERIALIZED (SELECT id FROM outbox WHERE status = 'pending' ORDER BY created_at
  LIMIT %s FOR UPDATE SKIP LOCKED)
  UPDATE outbox SET status = 'published', published_at = now(), attempts = attempts + 1
  WHERE id IN (SELECT id FROM claimed) RETURNING id, queue_name, actor_name, body, created_at"""
SELECT_PENDING = """SELECT id, queue_name, actor_name, body FROM outbox WHERE status = 'pending'
  ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED"""
MARK = "UPDATE outbox SET status = 'published', published_at = now(), attempts = attempts + 1 WHERE id = ANY(%s)"
#: A registration's envelope is about this long (petition.registered with a request text).
BODY = json.dumps({"id": "e" * 32, "type": "petition.registered", "version": 2, "producer": "intake",
                   "occurred_at": "2026-11-22T10:00:00+00:00", "correlation_id": "c" * 32,
                   "payload": {"petition_id": "p" * 32, "display_no": "4113022026112200001", "region_code": "411302",
                               "request_text": "要求解决拖欠工资问题" * 30, "petitioner_name": "张三"}},
                  ensure_ascii=False)


def claim_rounds(conn, mode: str, claims: int, per_claim: int) -> list[tuple[float, float]]:
    """(wall s, backend CPU s) of each claim (with its commit); the writes between claims not counted."""
    pid, out = conn.info.backend_pid, []
    conn.execute("TRUNCATE outbox")
    for _ in range(claims):
        with conn.transaction():
            conn.execute(WRITE, (BODY, per_claim))
        c0, t0 = _cpu_of(pid), time.perf_counter()
        with conn.transaction():
            if mode == "one-statement":
                rows = conn.execute(ONE_STATEMENT, (200,)).fetchall()
            else:
                rows = conn.execute(SELECT_PENDING, (200,)).fetchall()
                conn.execute(MARK, ([r[0] for r in rows],))
        out.append((time.perf_counter() - t0, _cpu_of(pid) - c0))
        assert len(rows) == per_claim, (mode, len(rows))
    return out


def bench_claims(args, url: str) -> dict:
    import psycopg

    result: dict = {}
    with psycopg.connect(conninfo(url), autocommit=True) as conn:
        conn.execute(TABLE)
        for _ in range(args.repeat):
            for mode in ("two-step", "one-statement"):
                rounds = claim_rounds(conn, mode, args.claims, args.per_claim)
                tenth = max(1, len(rounds) // 10)
                for part, chunk in (("first", rounds[:tenth]), ("last", rounds[-tenth:]), ("all", rounds)):
                    result.setdefault(mode, {}).setdefault(part, []).append(
                        (1000 * statistics.mean(w for w, _ in chunk), 1000 * statistics.mean(c for _, c in chunk)))
    return {mode: {part: {"wall_ms": round(statistics.median(w for w, _ in runs), 3),
                          "pg_cpu_ms": round(statistics.median(c for _, c in runs), 3)}
                   for part, runs in parts.items()} for mode, parts in result.items()}


def bench_enqueue(args, namespace: str) -> dict:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    from shared.broker import enqueue_many

    broker = RedisBroker(url=REDIS_URL, namespace=namespace)
    broker.declare_queue("assign")
    body = json.loads(BODY)

    def batch() -> list[dramatiq.Message]:
        return [dramatiq.Message(queue_name="assign", actor_name="assign.petition_registered", args=(body,),
                                 kwargs={}, options={"producer": "intake"}, message_id=uuid.uuid4().hex)
                for _ in range(args.batch)]

    def per_message(messages):
        for message in messages:
            broker.enqueue(message)

    contenders = {"per-message": per_message, "pipeline": lambda messages: enqueue_many(broker, messages)}
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    try:
        for _ in range(args.repeat):
            for name, send in contenders.items():
                messages = [batch() for _ in range(args.batches)]
                c0, t0 = time.process_time(), time.perf_counter()
                for messages_of_batch in messages:
                    send(messages_of_batch)
                n = args.batches * args.batch
                runs[name].append((1000 * (time.perf_counter() - t0) / n, 1000 * (time.process_time() - c0) / n))
                broker.client.delete(f"{namespace}:assign", f"{namespace}:assign.msgs")
    finally:
        broker.close()
    return {name: {"wall_ms_per_message": round(statistics.median(w for w, _ in r), 4),
                   "cpu_ms_per_message": round(statistics.median(c for _, c in r), 4)} for name, r in runs.items()}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claims", type=int, default=3000, help="claims per contender and pass")
    ap.add_argument("--per-claim", type=int, default=4, help="rows written and claimed per round (2 registrations)")
    ap.add_argument("--batch", type=int, default=32, help="messages per enqueue batch")
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3, help="alternating passes; medians are reported")
    args = ap.parse_args(argv)

    import redis
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    tag = uuid.uuid4().hex[:8]
    dbname, namespace = f"xfb_relay_{tag}", f"xfb-relay-{tag}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{dbname}"'))
    try:
        url = make_url(PG_ADMIN_URL).set(database=dbname).render_as_string(hide_password=False)
        claims = bench_claims(args, url)
        enqueue = bench_enqueue(args, namespace)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        admin.dispose()
        rds = redis.Redis.from_url(REDIS_URL)
        for key in rds.scan_iter(f"{namespace}*", count=500):
            rds.delete(key)
    print(f"claim {args.per_claim} rows, {args.claims} claims per pass, medians of {args.repeat} passes "
          "(wall ms / PostgreSQL CPU ms per claim):")
    for part in ("first", "last", "all"):
        old, new = claims["two-step"][part], claims["one-statement"][part]
        print(f"  {part:>5}: two-step {old['wall_ms']:.3f} / {old['pg_cpu_ms']:.3f}   one-statement "
              f"{new['wall_ms']:.3f} / {new['pg_cpu_ms']:.3f}   ratio (CPU) {old['pg_cpu_ms'] / max(new['pg_cpu_ms'], 1e-9):.2f}x")
    old, new = enqueue["per-message"], enqueue["pipeline"]
    print(f"enqueue {args.batch} messages per batch (wall ms / process CPU ms per message): per-message "
          f"{old['wall_ms_per_message']:.4f} / {old['cpu_ms_per_message']:.4f}   pipeline "
          f"{new['wall_ms_per_message']:.4f} / {new['cpu_ms_per_message']:.4f}   ratio (wall) "
          f"{old['wall_ms_per_message'] / new['wall_ms_per_message']:.2f}x")
    print(json.dumps({"params": vars(args), "claims": claims, "enqueue": enqueue}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
