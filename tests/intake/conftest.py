"""Fixtures for intake: the intake app alone, on each backend, with a helper to register."""
from __future__ import annotations

import pytest
from dramatiq.brokers.stub import StubBroker

from shared.migrations import upgrade
from tests.helpers import auth

ID_MAIN = "11010519491231002X"  # valid GB 11643 examples (domain.md §10)
ID_OTHER = "440524188001010014"


def full_body(**overrides) -> dict:
    import uuid

    body = {
        "system": "wancheng-xf", "county_no": f"WC-{uuid.uuid4().hex[:10]}", "channel": "来访", "purpose": "求决",
        "petitioned_at": "2026-11-20T09:30:00+08:00", "people_count": 1,
        "title": "小区房产证多年未办理", "request_text": "开发商拖欠我们小区房产证三年了，一直不给办，请政府督促办理。",
        "facts": "2023年交房，开发商以各种理由推诿。", "category": "城乡建设", "region_code": "411302",
        "complained_party": "某某房地产开发有限公司",
        "petitioners": [{"name": "张三", "id_number": ID_MAIN, "phone": "13812345678", "address_code": "411302"}],
    }
    body.update(overrides)
    return body


class Intake:
    def __init__(self, runtime, app, settings):
        self.runtime, self.app, self.settings = runtime, app, settings
        self.client = app.test_client()

    def post(self, body, *, headers=None, role="registrar", jurisdiction="411300"):
        headers = headers if headers is not None else auth(self.settings, role=role, jurisdiction=jurisdiction)
        return self.client.post("/intake/api/v1/petitions", json=body, headers=headers)

    def get(self, path, *, role="admin", jurisdiction="000000", headers=None, **kw):
        headers = headers if headers is not None else auth(self.settings, role=role, jurisdiction=jurisdiction)
        return self.client.get(f"/intake/api/v1/petitions{path}", headers=headers, **kw)

    def count(self, model=None):
        from sqlalchemy import func, select

        from intake_svc.models import Petition

        with self.runtime.sessions() as s:
            return s.scalar(select(func.count()).select_from(model or Petition))


@pytest.fixture
def intake(backend_settings):
    from intake_svc.app import build_runtime, create_app

    upgrade("intake", backend_settings)
    broker = StubBroker()
    runtime = build_runtime(backend_settings, broker=broker)
    yield Intake(runtime, create_app(backend_settings, runtime=runtime), backend_settings)
    runtime.close()
