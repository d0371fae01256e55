"""The HTTP surface every service shares: auth, the error envelope, docs, health, metrics."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from intake_svc.models import Petition
from shared.config import SERVICES
from tests.helpers import auth, petition_body


@pytest.fixture
def clients(system):
    return {name: app.test_client() for name, app in system.apps.items()}


def _count_petitions(system) -> int:
    with system.runtimes["intake"].sessions() as s:
        return s.scalar(select(func.count()).select_from(Petition))


@pytest.mark.parametrize("service", SERVICES)
def test_open_operational_endpoints(clients, service):
    c = clients[service]
    assert c.get(f"/{service}/healthz").json == {"status": "alive", "service": service}
    ready = c.get(f"/{service}/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"database": "ok", "broker": "ok"}
    metrics = c.get(f"/{service}/metrics")
    assert metrics.status_code == 200 and b"xinfang_http_requests_total" in metrics.data
    assert b"xinfang_outbox_backlog{service=\"%s\"}" % service.encode() in metrics.data
    spec = c.get(f"/{service}/openapi.json")
    assert spec.status_code == 200
    assert spec.json["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert "correlation_id" in spec.json["components"]["schemas"]["Error"]["properties"]
    docs = c.get(f"/{service}/docs")
    assert docs.status_code == 200 and f"/{service}/docs-assets/swagger-ui-bundle.js".encode() in docs.data
    assert c.get(f"/{service}/docs-assets/swagger-ui-bundle.js").status_code == 200


@pytest.mark.parametrize("path", ["/intake/api/v1/petitions/x", "/assign/api/v1/cases", "/supervise/api/v1/cases",
                                  "/notify/api/v1/inbox?recipient_id=u"])
def test_every_api_needs_a_token(clients, path):
    service = path.split("/")[1]
    r = clients[service].get(path)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json["code"] == 401 and r.json["correlation_id"]
    bad = clients[service].get(path, headers={"Authorization": "Bearer forged.token.value"})
    assert bad.status_code == 401 and "invalid token" in bad.json["message"]


def test_bad_petition_gets_field_errors_and_nothing_is_stored(system, clients):
    headers = auth(system.settings, role="registrar", jurisdiction="411300")
    r = clients["intake"].post("/intake/api/v1/petitions", headers=headers,
                               json={"region_code": "4113", "category": "不存在的分类", "request_text": ""})
    assert r.status_code == 422
    errors = r.json["errors"]["json"]
    assert set(errors) == {"system", "region_code", "category", "request_text", "channel", "purpose",
                           "petitioned_at", "title"}
    assert "region code" in errors["region_code"][0]
    assert _count_petitions(system) == 0


@pytest.mark.parametrize("data,content_type,status", [
    ("{not json", "application/json", 400),
    ("system=x", "application/x-www-form-urlencoded", 422),
    ("[1, 2]", "application/json", 422),
])
def test_malformed_bodies_are_clear_client_errors(system, clients, data, content_type, status):
    headers = auth(system.settings, role="registrar")
    r = clients["intake"].post("/intake/api/v1/petitions", headers=headers, data=data, content_type=content_type)
    assert r.status_code == status
    assert r.json["code"] == status and "correlation_id" in r.json
    assert _count_petitions(system) == 0


def test_oversized_body_is_413(system, clients):
    headers = auth(system.settings, role="registrar")
    big = petition_body(request_text="漏" * (3 * 1024 * 1024))
    r = clients["intake"].post("/intake/api/v1/petitions", headers=headers, json=big)
    assert r.status_code == 413 and r.json["code"] == 413


def test_role_and_jurisdiction_are_enforced(system, clients):
    c = clients["intake"]
    # A handler may not register petitions
    r = c.post("/intake/api/v1/petitions", headers=auth(system.settings, role="handler"), json=petition_body())
    assert r.status_code == 403
    # A Zhengzhou registrar may not register a Nanyang petition
    r = c.post("/intake/api/v1/petitions", headers=auth(system.settings, role="registrar", jurisdiction="410100"),
               json=petition_body(region_code="411302"))
    assert r.status_code == 403 and "jurisdiction" in r.json["message"]
    assert _count_petitions(system) == 0
    # Registered by Nanyang, it cannot be read from Zhengzhou
    created = c.post("/intake/api/v1/petitions", headers=auth(system.settings, role="registrar", jurisdiction="411300"),
                     json=petition_body())
    assert created.status_code == 201
    other = c.get(f"/intake/api/v1/petitions/{created.json['id']}",
                  headers=auth(system.settings, role="supervisor", jurisdiction="410100"))
    assert other.status_code == 403


def test_unknown_ids_and_paths_are_json_404(system, clients):
    r = clients["intake"].get("/intake/api/v1/petitions/nope", headers=auth(system.settings))
    assert r.status_code == 404 and r.json["message"] == "petition nope not found"
    r = clients["intake"].get("/intake/no/such/route", headers=auth(system.settings))
    assert r.status_code == 404 and r.json["code"] == 404


def test_correlation_id_is_echoed_and_kept(system, clients):
    r = clients["intake"].post("/intake/api/v1/petitions", json=petition_body(),
                               headers={**auth(system.settings, role="registrar"), "X-Correlation-ID": "trace-42"})
    assert r.status_code == 201
    assert r.headers["X-Correlation-ID"] == "trace-42"
    # Then the id rides on intake's messages and on the messages assign sends because of them
    system.settle()
    for service in ("intake", "assign"):
        with system.runtimes[service].sessions() as s:
            outbox = system.runtimes[service].outbox_model
            # (assign's directory.changed rows come from loading the directory at start, not from this request)
            bodies = [row.body for row in s.scalars(select(outbox).where(outbox.message_type != "directory.changed"))]
        assert bodies and all(json.loads(b)["correlation_id"] == "trace-42" for b in bodies), service


def test_resend_of_the_same_county_number_returns_the_existing_petition(system, clients):
    headers = auth(system.settings, role="registrar")
    body = petition_body()
    first = clients["intake"].post("/intake/api/v1/petitions", headers=headers, json=body)
    again = clients["intake"].post("/intake/api/v1/petitions", headers=headers, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"] and again.json["existing"] is True
    assert _count_petitions(system) == 1


def test_login_issues_a_token_that_every_service_accepts(system, clients):
    from assign_svc.users import create_user

    with system.runtimes["assign"].uow() as session:
        create_user(session, username="wang", password="correct-horse-1", role="supervisor", jurisdiction="411300")
    bad = clients["assign"].post("/assign/api/v1/auth/login", json={"username": "wang", "password": "wrong-password"})
    assert bad.status_code == 401
    ok = clients["assign"].post("/assign/api/v1/auth/login", json={"username": "wang", "password": "correct-horse-1"})
    assert ok.status_code == 200 and ok.json["role"] == "supervisor"
    headers = {"Authorization": f"Bearer {ok.json['access_token']}"}
    assert clients["supervise"].get("/supervise/api/v1/cases", headers=headers).status_code == 200
    assert clients["assign"].get("/assign/api/v1/units", headers=headers).status_code == 200
