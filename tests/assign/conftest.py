"""Fixtures of assign_svc's tests: a migrated, bootstrapped assign service on each backend,
a frozen clock, and a way to feed it registered petitions without intake."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from dramatiq.brokers.stub import StubBroker

from shared import clock
from shared.contracts import PetitionRegistered
from shared.migrations import upgrade
from tests.helpers import auth

#: 2025-09-22 (a Monday) 10:00 Beijing time — in the past, so tokens issued "now" are valid (iat).
MONDAY = datetime(2025, 9, 22, 2, tzinfo=timezone.utc)


def beijing(y: int, m: int, d: int, hour: int = 10) -> datetime:
    return datetime(y, m, d, hour, tzinfo=timezone.utc) - timedelta(hours=8)


def freeze(instant: datetime) -> None:
    clock.current().set(instant, frozen=True)


class Assign:
    """The assign service under test: runtime, Flask client, helpers."""

    def __init__(self, runtime, app) -> None:
        self.runtime, self.app, self.client = runtime, app, app.test_client()
        self.settings = runtime.settings

    def register(self, **overrides) -> str:
        """A petition.registered payload handled as the actor would; returns the case id."""
        from assign_svc import service

        fields = dict(petition_id=uuid.uuid4().hex, display_no=f"411302{uuid.uuid4().int % 10**12:012d}",
                      system="wancheng-xf", county_no=None, region_code="411302", category="城乡建设",
                      channel="网上信访", request_text="小区外墙脱落，多次反映无人维修", petitioner_name="张三",
                      registered_at=clock.now(), flags={})
        extra = {k: overrides.pop(k) for k in list(overrides) if k not in fields}
        fields.update(overrides)
        payload = PetitionRegistered(**fields)
        for key, value in extra.items():  # optional fields the lead is adding to v1
            object.__setattr__(payload, key, value)
        with self.runtime.uow() as session:
            return service.assign_petition(session, self.runtime, payload).id

    def case(self, case_id: str, **who) -> dict:
        r = self.client.get(f"/assign/api/v1/cases/{case_id}", headers=self.headers(**who) if who else self.admin())
        assert r.status_code == 200, r.json
        return r.json

    def act(self, case_id: str, action: str, body: dict | None = None, **who):
        return self.client.post(f"/assign/api/v1/cases/{case_id}/actions/{action}", json=body or {},
                                headers=self.headers(**who) if who else self.admin())

    def headers(self, **who) -> dict:
        return auth(self.settings, **who)

    def admin(self) -> dict:
        return auth(self.settings, role="admin")

    def unit(self, unit_id: str, role: str = "handler") -> dict:
        """Who: staff of a unit (jurisdiction = the unit's county)."""
        return {"role": role, "unit_id": unit_id, "jurisdiction": unit_id[:6], "username": f"{role}-{unit_id}"}

    def outbox(self, message_type: str | None = None) -> list:
        import json

        from sqlalchemy import select

        model = self.runtime.outbox_model
        with self.runtime.sessions() as s:
            stmt = select(model).order_by(model.created_at)
            if message_type:
                stmt = stmt.where(model.message_type == message_type)
            return [json.loads(r.body) for r in s.scalars(stmt)]


def build_assign(settings) -> Assign:
    from assign_svc.app import bootstrap, build_runtime, create_app

    upgrade("assign", settings)
    broker = StubBroker()
    runtime = build_runtime(settings, broker=broker)
    bootstrap(runtime)
    return Assign(runtime, create_app(settings, runtime=runtime))


@pytest.fixture
def assign(settings):
    """assign_svc on SQLite, clock frozen on Monday 2026-11-23 10:00 Beijing time."""
    svc = build_assign(settings)
    freeze(MONDAY)
    yield svc
    svc.runtime.close()


@pytest.fixture
def assign_on(backend_settings):
    """assign_svc on each backend (SQLite, PostgreSQL)."""
    svc = build_assign(backend_settings)
    freeze(MONDAY)
    yield svc
    svc.runtime.close()
