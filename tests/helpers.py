"""Helpers shared by the tests: tokens and request bodies."""
from __future__ import annotations

import time
import uuid
from typing import Callable, TypeVar

from shared.auth import Principal, issue_token
from shared.config import Settings

SECRET = "test-secret-key-for-xinfang-tests"
T = TypeVar("T")


def token_for(settings: Settings, *, role: str = "admin", jurisdiction: str = "000000",
              unit_id: str | None = None, username: str | None = None) -> str:
    principal = Principal(user_id=uuid.uuid4().hex, username=username or f"test-{role}", role=role,
                          jurisdiction=jurisdiction, unit_id=unit_id)
    return issue_token(settings, principal)


def auth(settings: Settings, **kwargs) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(settings, **kwargs)}"}


def petition_body(**overrides) -> dict:
    """A valid online petition (网上信访) about 城乡建设 in 宛城区 (411302)."""
    body = {"system": "wancheng-xf", "county_no": f"WC-{uuid.uuid4().hex[:10]}", "channel": "网上信访",
            "purpose": "求决", "petitioned_at": "2026-11-20T09:30:00+08:00", "title": "小区外墙脱落",
            "region_code": "411302", "category": "城乡建设", "request_text": "小区外墙脱落，多次反映无人维修",
            "petitioners": [{"name": "张三", "id_number": "11010519491231002X", "phone": "13812345678"}]}
    body.update(overrides)
    return body


def wait_for(probe: Callable[[], T], *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition") -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
