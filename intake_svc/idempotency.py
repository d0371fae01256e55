"""Idempotent registration (幂等): the same ``Idempotency-Key`` with the same body returns
the first response; the same key with another body is a conflict."""
from __future__ import annotations

import hashlib
import json

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from intake_svc.models import IdempotencyRecord
from shared import clock

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 128


def fingerprint(raw_body: bytes) -> str:
    """A hash of the request body, insensitive to key order and whitespace when it is JSON."""
    try:
        canonical = json.dumps(json.loads(raw_body), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
    except ValueError:
        return hashlib.sha256(raw_body).hexdigest()


def find(session: Session, *, scope: str, key: str) -> IdempotencyRecord | None:
    return session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                          IdempotencyRecord.key == key))


def record_row(*, scope: str, key: str, request_hash: str, status: int, body: dict) -> dict:
    """The row that stores the first response (inserted with the registration's rows)."""
    return {"scope": scope, "key": key, "request_hash": request_hash, "status": status, "body": body,
            "created_at": clock.now()}


def remember(session: Session, *, scope: str, key: str, request_hash: str, status: int, body: dict) -> None:
    """Store the first response (a plain INSERT: nothing to read back; a concurrent first use of the
    same key fails the transaction on the unique constraint)."""
    session.execute(_INSERT, record_row(scope=scope, key=key, request_hash=request_hash, status=status, body=body))


TABLE = IdempotencyRecord.__table__
_INSERT = insert(TABLE).inline()  # no RETURNING of the id: nothing reads it
