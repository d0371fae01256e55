"""Fixtures of notify_svc's tests: the service on each backend with a part of the demo directory,
a frozen clock, and real local channel endpoints (aiosmtpd, an HTTP SMS gateway, a webhook receiver)."""
from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from shared import broker as broker_mod
from shared import clock
from shared.contracts import DirectoryChanged, NoticeRequested, dump_envelope, envelope_for
from shared.migrations import upgrade
from tests.conftest import free_port
from tests.helpers import auth

#: 2025-09-22 (a Monday) 10:00 Beijing time.
MONDAY = datetime(2025, 9, 22, 2, tzinfo=timezone.utc)
WEBHOOK_SECRET = "webhook-test-secret"
UNITS = ("411300-gov", "411300-xfj", "411302-gov", "411302-xfj", "411302-zjj")


def beijing(y: int, m: int, d: int, hour: int = 10, minute: int = 0) -> datetime:
    return datetime(y, m, d, hour, minute, tzinfo=timezone.utc) - timedelta(hours=8)


def freeze(instant: datetime) -> None:
    clock.current().set(instant, frozen=True)


def advance(**delta) -> datetime:
    now = clock.now() + timedelta(**delta)
    freeze(now)
    return now


def directory_records(units=UNITS) -> tuple[list[dict], list[dict]]:
    from assign_svc.directory import read_file

    data = read_file(__import__("assign_svc.directory", fromlist=["DEFAULT_FILE"]).DEFAULT_FILE)
    unit_rows = [{"id": u["id"], "name": u["name"], "kind": u["kind"], "level": u["level"],
                  "region_code": str(u["region_code"]), "parent_id": u.get("parent"),
                  "contacts": dict(u.get("contacts") or {}), "active": True} for u in data["units"] if u["id"] in units]
    people = [{"id": p["id"], "unit_id": p["unit"], "name": p["name"], "post": p["post"], "title": p.get("title", ""),
               "leader": bool(p.get("leader")), "phone": p.get("phone"), "email": p.get("email"),
               "webhook": p.get("webhook"), "active": True} for p in data["people"] if p["unit"] in units]
    return unit_rows, people


class Notify:
    """notify_svc under test: runtime, Flask client, helpers."""

    def __init__(self, runtime, app) -> None:
        self.runtime, self.app, self.client = runtime, app, app.test_client()
        self.settings = runtime.settings
        self.version = 1

    @property
    def cfg(self):
        return self.runtime.extras["notify"]

    def configure(self, **changes) -> None:
        self.runtime.extras["notify"] = self.cfg.replace(**changes)

    def directory(self, units: list[dict] = (), people: list[dict] = ()) -> None:
        from notify_svc import service

        self.version += 1
        with self.runtime.uow() as s:
            service.copy_contacts(s, DirectoryChanged(version=self.version, changed_at=clock.now(),
                                                      units=list(units), people=list(people)))

    def consume(self, actor_name: str, payload, message_id: str | None = None) -> None:
        """Run a consumer exactly as the worker would, with a given broker message id."""
        body = dump_envelope(envelope_for(payload, id=uuid.uuid4().hex, occurred_at=clock.now(), producer="test",
                                          correlation_id="test"))
        token = broker_mod._message_id.set(message_id or uuid.uuid4().hex)
        try:
            self.runtime.broker.get_actor(actor_name).fn(body)
        finally:
            broker_mod._message_id.reset(token)

    def request(self, notice_type: str = "assignment", *, recipient_kind: str = "unit",
                recipient_id: str = "411302-zjj", recipient_name: str = "宛城区住房和城乡建设局",
                subject_id: str | None = None, urgency: str = "normal", context: dict | None = None,
                dedupe_key: str | None = None, message_id: str | None = None):
        from notify_svc.models import Notice

        subject_id = subject_id or uuid.uuid4().hex
        ctx = dict(self.cfg.type_policy(notice_type).get("sample") or {})
        ctx.update(context or {})
        key = dedupe_key or f"{notice_type}:{subject_id}:{recipient_kind}:{recipient_id}:1"
        self.consume("notify.notice_requested", NoticeRequested(
            notice_type=notice_type, dedupe_key=key, recipient_kind=recipient_kind, recipient_id=recipient_id,
            recipient_name=recipient_name, subject_id=subject_id, urgency=urgency, context=ctx), message_id)
        with self.runtime.sessions() as s:
            return s.scalar(select(Notice).where(Notice.dedupe_key == key))

    def deliver(self):
        from notify_svc.delivery import deliver

        return deliver(self.runtime)

    def sweep(self):
        from notify_svc.escalation import escalation_sweep

        return escalation_sweep(self.runtime)

    def rows(self, model, *where, order=None):
        with self.runtime.sessions() as s:
            stmt = select(model).where(*where)
            if order is not None:
                stmt = stmt.order_by(order)
            return list(s.scalars(stmt))

    def outbox(self, message_type: str) -> list[dict]:
        model = self.runtime.outbox_model
        with self.runtime.sessions() as s:
            return [json.loads(r.body)["payload"] for r in s.scalars(
                select(model).where(model.message_type == message_type).order_by(model.created_at))]

    def headers(self, **who) -> dict:
        return auth(self.settings, **who)


def build_notify(settings, **cfg) -> Notify:
    from notify_svc.app import build_runtime, create_app
    from notify_svc.settings import NotifySettings

    upgrade("notify", settings)
    ncfg = NotifySettings.from_env({}, secret_key=settings.secret_key, **cfg)
    runtime = build_runtime(settings, broker=StubBroker(), notify=ncfg)
    svc = Notify(runtime, create_app(settings, runtime=runtime))
    freeze(MONDAY)
    units, people = directory_records()
    svc.directory(units, people)
    return svc


@pytest.fixture
def notify(settings):
    svc = build_notify(settings)
    yield svc
    svc.runtime.close()


@pytest.fixture
def notify_on(backend_settings):
    svc = build_notify(backend_settings)
    yield svc
    svc.runtime.close()


# ---------------------------------------------------------------- channel endpoints


@dataclass
class SmtpServer:
    host: str
    port: int
    messages: list = field(default_factory=list)
    sessions: list = field(default_factory=list)  # the SMTP session (= connection) of each message

    def connections(self) -> int:
        return len({id(s) for s in self.sessions})

    def parsed(self):
        return [(env, message_from_bytes(env.original_content, policy=policy.default)) for env in self.messages]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    server = SmtpServer("127.0.0.1", free_port())

    class Handler:
        async def handle_DATA(self, _server, session, envelope):
            server.messages.append(envelope)
            server.sessions.append(session)
            return "250 OK"

    controller = Controller(Handler(), hostname=server.host, port=server.port)
    controller.start()
    yield server
    from notify_svc.channels import close_smtp_pools

    close_smtp_pools()
    controller.stop()


class _Http:
    """A local HTTP endpoint in a thread; ``respond(handler, body)`` decides each answer."""

    def __init__(self, respond) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((dict(self.headers), body))
                status, reply, delay = respond(self, body)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sms_gateway():
    """Plays an SMS gateway: ``gateway.script`` is a list of (status, json reply, delay) used in turn
    (the last one repeats); success is ``{"code": 0}``."""
    script: list = [(200, {"code": 0, "msg": "ok"}, 0)]

    def respond(_handler, _body):
        status, reply, delay = script.pop(0) if len(script) > 1 else script[0]
        return status, json.dumps(reply).encode(), delay

    gateway = _Http(respond)
    gateway.script = script
    yield gateway
    gateway.close()


@pytest.fixture
def webhook_receiver():
    """A receiver that verifies the HMAC signature and rejects a stale timestamp (401)."""
    from notify_svc.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

    accepted: list[dict] = []
    offset = {"seconds": 0.0}

    def respond(handler, body):
        ok = verify_signature(WEBHOOK_SECRET, handler.headers.get(TIMESTAMP_HEADER), body,
                              handler.headers.get(SIGNATURE_HEADER), now=time.time() + offset["seconds"])
        if not ok:
            return 401, b'{"error": "bad signature or stale timestamp"}', 0
        accepted.append(json.loads(body))
        return 200, b'{"ok": true}', 0

    receiver = _Http(respond)
    receiver.accepted, receiver.offset = accepted, offset
    yield receiver
    receiver.close()
