"""The xinfang command: migrate, user create, clock, sweep."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from shared.cli import cli
from shared.system import EmbeddedSystem
from tests.helpers import auth, petition_body


@pytest.fixture
def run(settings, monkeypatch):
    monkeypatch.setenv("XINFANG_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("XINFANG_SECRET_KEY", settings.secret_key)
    monkeypatch.setenv("XINFANG_LOG_LEVEL", "WARNING")

    def _run(*args, control: bool = True, input: str | None = None):
        monkeypatch.setenv("XINFANG_CLOCK_CONTROL", "1" if control else "0")
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return _run


def test_migrate_then_create_the_first_admin(run):
    assert run("migrate").exit_code == 0
    ok = run("user", "create", "--username", "admin", "--role", "admin", "--password", "first-admin-pw")
    assert ok.exit_code == 0 and "created admin admin" in ok.output
    dup = run("user", "create", "--username", "admin", "--role", "admin", "--password", "first-admin-pw")
    assert dup.exit_code == 2 and "already exists" in dup.output
    short = run("user", "create", "--username", "b", "--role", "admin", "--password", "short")
    assert short.exit_code == 2 and "at least 10" in short.output


def test_clock_moves_only_when_control_is_enabled(run):
    refused = run("clock", "advance", "--days", "1", control=False)
    assert refused.exit_code == 1 and "disabled" in refused.output
    moved = run("clock", "set", "2027-03-01T09:00:00+08:00", "--frozen")
    assert moved.exit_code == 0 and moved.output.startswith("2027-03-01T01:00:00+00:00")
    assert run("clock", "advance", "--days", "2").output.startswith("2027-03-03T01:00:00+00:00")
    assert "2027-03-03T01:00:00+00:00" in run("clock", "show").output


def test_sweep_prunes_finished_messages_after_the_retention_period(settings, run):
    # Given a delivered petition
    system = EmbeddedSystem(settings)
    system.start()
    try:
        client = system.apps["intake"].test_client()
        assert client.post("/intake/api/v1/petitions", json=petition_body(),
                           headers=auth(settings, role="registrar")).status_code == 201
        system.settle()
    finally:
        system.stop()
    intake = system.runtimes["intake"]

    def outbox_rows():
        with intake.sessions() as s:
            return s.scalar(select(func.count()).select_from(intake.outbox_model))

    assert outbox_rows() == 2
    # When a sweep runs today, nothing goes; 31 days later, the finished rows go
    assert '"outbox": 0' in run("sweep", "intake").output
    run("clock", "set", (datetime.now(timezone.utc) + timedelta(days=31)).isoformat())
    out = run("sweep").output
    assert '"outbox": 2' in out.splitlines()[0]
    assert outbox_rows() == 0


def test_serve_caps_the_connections_of_each_worker(run, monkeypatch):
    """``--worker-connections`` reaches gunicorn: a worker holding that many stops accepting, so a burst of
    keep-alive connections spreads over the workers instead of landing on the first one awake."""
    from gunicorn.app.base import BaseApplication

    seen = {}

    def fake_run(app):  # what gunicorn would start with, without starting it
        seen.update(workers=app.cfg.workers, threads=app.cfg.threads, connections=app.cfg.worker_connections,
                    bind=app.cfg.bind)

    monkeypatch.setattr(BaseApplication, "run", fake_run)
    assert run("serve", "intake", "--port", "8123", "--workers", "1", "--threads", "8",
               "--worker-connections", "16").exit_code == 0
    assert seen == {"workers": 1, "threads": 8, "connections": 16, "bind": ["127.0.0.1:8123"]}
    assert run("serve", "intake", "--workers", "1").exit_code == 0
    assert seen["connections"] == 1000  # gunicorn's own default unless told
    bad = CliRunner().invoke(cli, ["serve", "intake", "--worker-connections", "0"])
    assert bad.exit_code == 2 and "--worker-connections" in bad.output
