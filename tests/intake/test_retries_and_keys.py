"""Retries never duplicate; county systems call with API keys, inside their jurisdiction, within limits."""
from __future__ import annotations

import threading

import pytest

from intake_svc.apikeys import create_key, revoke_key
from intake_svc.models import Outbox
from tests.intake.conftest import full_body


def key_for(intake, jurisdiction="411302", rate_limit=None, system="wancheng-xf"):
    with intake.runtime.uow() as session:
        client, secret = create_key(session, name="宛城区信访局登记系统", system=system, jurisdiction=jurisdiction,
                                    rate_limit=rate_limit)
        return client.id, {"X-API-Key": secret}


def test_same_idempotency_key_and_body_returns_the_first_response(intake):
    _, headers = key_for(intake)
    body = full_body()
    first = intake.post(body, headers={**headers, "Idempotency-Key": "k-1"})
    again = intake.post(body, headers={**headers, "Idempotency-Key": "k-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json == first.json
    assert intake.count() == 1 and intake.count(Outbox) == 2


def test_same_idempotency_key_with_another_body_is_a_conflict(intake):
    _, headers = key_for(intake)
    intake.post(full_body(), headers={**headers, "Idempotency-Key": "k-2"})
    other = intake.post(full_body(title="另一件事"), headers={**headers, "Idempotency-Key": "k-2"})
    assert other.status_code == 409 and "Idempotency-Key" in other.json["message"]
    assert intake.count() == 1


def test_resend_without_key_returns_the_existing_petition_marked_existing(intake):
    _, headers = key_for(intake)
    body = full_body()
    first = intake.post(body, headers=headers)
    again = intake.post(body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"] and again.json["existing"] is True
    assert intake.count() == 1


@pytest.mark.parametrize("with_key", [False, True])
def test_concurrent_duplicates_yield_one_petition(intake, with_key):
    # Given eight identical submissions sent at the same moment
    _, headers = key_for(intake)
    if with_key:
        headers["Idempotency-Key"] = "k-concurrent"
    body = full_body()
    barrier = threading.Barrier(8)
    results = []

    def submit():
        client = intake.app.test_client()
        barrier.wait()
        results.append(client.post("/intake/api/v1/petitions", json=body, headers=headers))

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Then exactly one petition exists and every answer names it
    assert {r.status_code for r in results} <= {200, 201}, [r.json for r in results]
    assert len({r.json["id"] for r in results}) == 1
    assert sum(r.status_code == 201 for r in results) >= 1
    assert intake.count() == 1 and intake.count(Outbox) == 2


def test_api_key_jurisdiction_missing_bad_and_revoked_keys(intake):
    key_id, headers = key_for(intake, jurisdiction="411302")
    assert intake.post(full_body(region_code="411302"), headers=headers).status_code == 201
    # Outside its jurisdiction: 403, nothing stored
    outside = intake.post(full_body(region_code="411303"), headers=headers)
    assert outside.status_code == 403 and intake.count() == 1
    # Another system's numbering: a key registers only under its own system, field-level 422
    spoofed = intake.post(full_body(system="wolong-xf"), headers=headers)
    assert spoofed.status_code == 422 and "wancheng-xf" in spoofed.json["errors"]["json"]["system"][0]
    assert intake.count() == 1
    # Reading follows the same rule
    listed = intake.get("", headers=headers).json
    assert [p["region_code"] for p in listed] == ["411302"]
    # Missing or bad key: 401
    assert intake.post(full_body(), headers={}).status_code == 401
    assert intake.post(full_body(), headers={"X-API-Key": "xfk_nope_nope"}).status_code == 401
    # Revoked: 401
    with intake.runtime.uow() as session:
        revoke_key(session, key_id)
    revoked = intake.post(full_body(), headers=headers)
    assert revoked.status_code == 401 and "revoked" in revoked.json["message"]


def test_rate_limit_answers_429_with_retry_after(intake):
    _, headers = key_for(intake, rate_limit="3/minute")
    codes = [intake.get("", headers=headers).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = intake.get("", headers=headers)
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another key is not affected
    _, other = key_for(intake, rate_limit="3/minute")
    assert intake.get("", headers=other).status_code == 200


def test_the_openapi_example_registers_as_it_is(intake):
    """A county system with a key and the OpenAPI document: the documented example body is a valid
    registration (201), and sent again it is the existing petition (200), never a second one."""
    spec = intake.client.get("/intake/openapi.json").json
    example = spec["paths"]["/intake/api/v1/petitions"]["post"]["requestBody"]["content"]["application/json"]["example"]
    _, headers = key_for(intake, system=example["system"])
    first = intake.post(example, headers=headers)
    assert first.status_code == 201, first.json
    assert first.json["category_code"] == example["category"] and first.json["region_code"] == example["region_code"]
    again = intake.post(example, headers=headers)
    assert again.status_code == 200 and again.json["existing"] is True and again.json["id"] == first.json["id"]
    assert intake.count() == 1
