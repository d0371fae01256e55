"""County systems' API keys (接口密钥): created by an operator, stored hashed, revocable,
each bound to a jurisdiction (a region-code subtree)."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from flask import request
from flask_smorest import abort
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from intake_svc.models import ApiClient
from shared import clock
from shared.auth import Principal
from shared.regions import is_region_code

#: Seconds a verified key is trusted without asking the database again (per process).  A key
#: revoked elsewhere stops working within this time; revoked in this process, at once.
CACHE_SECONDS = 5.0

#: Header carrying the key; Open311 clients send ``api_key`` as a form or query field instead.
HEADER = "X-API-Key"
PREFIX = "xfk"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, *, name: str, system: str, jurisdiction: str,
               rate_limit: str | None = None) -> tuple[ApiClient, str]:
    """A new key; the secret is returned once and only its hash is kept."""
    if not is_region_code(jurisdiction):
        raise ValueError("jurisdiction must be a region code")
    if not system or len(system) > 64:
        raise ValueError("system must be 1 to 64 characters")
    key_id = secrets.token_hex(6)
    secret = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    client = ApiClient(name=name, system=system, key_prefix=key_id, key_hash=_digest(secret),
                       jurisdiction=jurisdiction, rate_limit=rate_limit, created_at=clock.now())
    session.add(client)
    session.flush()
    return client, secret


def revoke_key(session: Session, client_id: str) -> ApiClient | None:
    client = session.get(ApiClient, client_id) or session.scalar(
        select(ApiClient).where(ApiClient.key_prefix == client_id))
    if client is not None and client.revoked_at is None:
        client.revoked_at = clock.now()
        _verified.clear()
    return client


def find_client(session: Session, presented: str) -> ApiClient | None:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    client = session.scalar(select(ApiClient).where(ApiClient.key_prefix == parts[1]))
    if client is None or client.revoked_at is not None:
        return None
    return client if hmac.compare_digest(client.key_hash, _digest(presented)) else None


def principal_of(client: ApiClient) -> Principal:
    return Principal(user_id=f"apikey:{client.id}", username=client.system, role="county_system",
                     jurisdiction=client.jurisdiction, unit_id=None)


def presented_key() -> str | None:
    key = request.headers.get(HEADER)
    if key:
        return key.strip()
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data") and "api_key" in request.form:
        return request.form["api_key"].strip()
    return request.args.get("api_key") or None


#: digest of a presented key -> (monotonic time verified, principal, rate limit, last used)
_verified: dict[str, tuple[float, Principal, str | None, object]] = {}


def make_resolver(runtime):
    """The hook ``shared.auth`` calls when a request has no bearer token."""

    def lookup(presented: str):
        digest = _digest(presented)
        hit = _verified.get(digest)
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1:]
        with runtime.read_sessions() as session:
            client = find_client(session, presented)
            if client is None:
                _verified.pop(digest, None)
                return None
            found = (principal_of(client), client.rate_limit, client.last_used_at)
        now = clock.now()
        if found[2] is None or (now - found[2]).total_seconds() > 60:  # at most one write a minute per key
            with runtime.uow() as session:
                session.execute(update(ApiClient).where(ApiClient.id == client.id).values(last_used_at=now))
        _verified[digest] = (time.monotonic(), *found)
        return found

    def resolve(_request) -> Principal | None:
        presented = presented_key()
        if not presented:
            return None
        found = lookup(presented)
        if found is None:
            abort(401, message="invalid or revoked API key")
        principal, limit, _ = found
        request.environ["xinfang.rate_limit"] = limit
        return principal

    return resolve
