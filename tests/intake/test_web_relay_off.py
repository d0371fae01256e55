"""``XINFANG_WEB_RELAY=0``: intake's gunicorn workers run no outbox relay; the intake worker process
publishes what they accepted, and nothing waits or is lost while no worker runs."""
from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import create_engine, func, select

from shared.config import Settings
from tests.conftest import free_port
from tests.helpers import SECRET, auth, petition_body, wait_for
from tests.stack import DistributedStack, stack_env

pytestmark = pytest.mark.slow


def test_the_setting_reads_the_environment():
    assert Settings.from_env({}).web_relay is True
    assert Settings.from_env({"XINFANG_WEB_RELAY": "0"}).web_relay is False


def _outbox(url: str) -> dict[str, int]:
    from intake_svc.models import Outbox

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(select(Outbox.status, func.count()).group_by(Outbox.status)).all())
    finally:
        engine.dispose()


def test_without_a_web_relay_the_worker_publishes_what_the_web_accepted(tmp_path, pg_urls, redis_url,
                                                                         redis_namespace):
    env = stack_env(data_dir=tmp_path / "var", db_urls=pg_urls, broker_url=redis_url, secret=SECRET,
                    namespace=redis_namespace, extra={"XINFANG_WEB_RELAY": "0"})
    stack = DistributedStack(env=env, log_dir=tmp_path / "logs")
    stack.migrate()
    try:
        # Given intake served with XINFANG_WEB_RELAY=0 and no intake worker yet
        base = stack.start_web("intake", free_port(), workers=2)
        headers = auth(stack.settings, role="registrar", jurisdiction="411300")
        n = 6
        for _ in range(n):
            assert requests.post(f"{base}/intake/api/v1/petitions", json=petition_body(), headers=headers,
                                 timeout=10).status_code == 201
        # Then the web processes publish nothing: every message waits in the outbox
        time.sleep(1.0)  # several poll periods of a relay (0.2 s in the test stack), had one been running
        waiting = _outbox(pg_urls["intake"])
        assert waiting.get("pending", 0) >= n and "published" not in waiting, waiting
        # When the intake worker starts, its relay publishes every one of them, once
        stack.start_worker("intake", threads=1)
        try:
            wait_for(lambda: _outbox(pg_urls["intake"]).get("pending", 0) == 0 or None, timeout=30,
                     what="the intake worker's relay to publish the outbox")
        except AssertionError:
            print(stack.logs())
            raise
        assert _outbox(pg_urls["intake"]) == {"published": waiting["pending"]}
    finally:
        stack.stop()
