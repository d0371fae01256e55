"""The distributed mode: separate web and worker processes on PostgreSQL + Redis.

A worker killed with SIGKILL in the middle of its work loses nothing and
duplicates nothing: its unacknowledged messages return to the queue (Redis
broker heartbeats), and the inbox turns any redelivery into a no-op.
"""
from __future__ import annotations

import pytest
import requests
from sqlalchemy import create_engine, func, select

from shared.config import SERVICES
from tests.conftest import free_port
from tests.helpers import SECRET, auth, petition_body, wait_for
from tests.stack import DistributedStack, stack_env

pytestmark = pytest.mark.slow


@pytest.fixture
def stack(tmp_path, pg_urls, redis_url, redis_namespace):
    stack = DistributedStack(env=stack_env(data_dir=tmp_path / "var", db_urls=pg_urls, broker_url=redis_url,
                                           secret=SECRET, namespace=redis_namespace), log_dir=tmp_path / "logs")
    stack.migrate()
    yield stack
    stack.stop()


def _notice_count(url: str) -> tuple[int, int]:
    """(assignment notices, distinct subjects) straight from notify's database.

    Only 交办通知 count: a repeat petition also sends its owning leader a 包案通知."""
    from notify_svc.models import Notice

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assignment = Notice.notice_type == "assignment"
            total = conn.scalar(select(func.count()).select_from(Notice).where(assignment))
            distinct = conn.scalar(select(func.count(func.distinct(Notice.subject_id))).where(assignment))
            return total, distinct
    finally:
        engine.dispose()


def test_petition_reaches_the_inbox_through_separate_processes(stack):
    intake = stack.start_web("intake", free_port())
    notify = stack.start_web("notify", free_port())
    for service in SERVICES:
        stack.start_worker(service)
    headers = auth(stack.settings, role="registrar", jurisdiction="411300")
    created = requests.post(f"{intake}/intake/api/v1/petitions", json=petition_body(), headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    admin = auth(stack.settings, role="admin")

    def inbox():
        r = requests.get(f"{notify}/notify/api/v1/inbox", params={"recipient_id": "411302-zjj"}, headers=admin,
                         timeout=10)
        return r.json() if r.status_code == 200 else None

    try:
        notices = wait_for(inbox, timeout=30, what="the notice in the distributed stack")
    except AssertionError:
        print(stack.logs())
        raise
    assert notices[0]["title"] == f"交办通知：信访件 {created.json()['display_no']}"
    ready = requests.get(f"{intake}/intake/readyz", timeout=5).json()
    assert ready["checks"] == {"database": "ok", "broker": "ok"}


def test_killing_a_worker_midflight_loses_and_duplicates_nothing(stack):
    n = 40
    intake = stack.start_web("intake", free_port())
    for service in ("assign", "supervise"):
        stack.start_worker(service)
    headers = auth(stack.settings, role="registrar", jurisdiction="411300")
    for _ in range(n):
        assert requests.post(f"{intake}/intake/api/v1/petitions", json=petition_body(), headers=headers,
                             timeout=10).status_code == 201
    notify_db = stack.env["XINFANG_NOTIFY_DATABASE_URL"]
    # Given n notice requests queued for notify, and a notify worker that starts on them
    stack.start_worker("notify", name="notify-1", threads=1)
    started = wait_for(lambda: _notice_count(notify_db)[0] or None, timeout=60, interval=0.01,
                       what="the first notice")
    # When that worker is killed with SIGKILL in the middle of the batch
    stack.kill("notify-1")
    at_kill = _notice_count(notify_db)[0]
    print(f"notices when notify-1 was killed: {at_kill} of {n}")
    assert started >= 1 and at_kill < n, "the worker finished before it could be killed mid-flight"
    # And a replacement worker comes up
    stack.start_worker("notify", name="notify-2")
    # Then every notice arrives, exactly once
    try:
        wait_for(lambda: _notice_count(notify_db)[0] >= n, timeout=60, what=f"{n} notices")
    except AssertionError:
        print(stack.logs())
        raise
    assert _notice_count(notify_db) == (n, n)


def test_metrics_add_up_across_the_web_server_processes(stack):
    # Given intake served by two gunicorn worker processes
    base = stack.start_web("intake", free_port(), workers=2)
    headers = auth(stack.settings, role="registrar", jurisdiction="411300")
    # When six petitions are registered (spread over both processes)
    for _ in range(6):
        assert requests.post(f"{base}/intake/api/v1/petitions", json=petition_body(), headers=headers,
                             timeout=10).status_code == 201
    # Then any scrape reports all six, and the outbox backlog
    text = requests.get(f"{base}/intake/metrics", timeout=10).text
    line = next(x for x in text.splitlines() if x.startswith("xinfang_http_requests_total{")
                and 'method="POST"' in x and 'status="201"' in x)
    assert float(line.rsplit(" ", 1)[1]) == 6.0
    assert 'xinfang_outbox_backlog{service="intake"}' in text
