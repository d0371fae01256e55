"""Signed acknowledgement links (签收链接): ``/notify/ack/<token>``.

token = ``<notice id>.<expiry, unix seconds>.<HMAC-SHA256, base64url>`` with the key
``XINFANG_NOTIFY_ACK_SECRET``; expiry is checked against the system clock (``shared.clock``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta

from notify_svc.settings import NotifySettings


class ForgedLink(Exception):
    pass


class ExpiredLink(Exception):
    pass


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_token(cfg: NotifySettings, notice_id: str, now: datetime) -> str:
    expires = int((now + timedelta(hours=cfg.ack_ttl_hours)).timestamp())
    payload = f"{notice_id}.{expires}"
    return f"{payload}.{_mac(cfg.ack_secret, payload)}"


def ack_link(cfg: NotifySettings, notice_id: str, now: datetime) -> str:
    return f"{cfg.base_url.rstrip('/')}/notify/ack/{make_token(cfg, notice_id, now)}"


def verify_token(cfg: NotifySettings, token: str, now: datetime) -> str:
    """The notice id of a valid token; ForgedLink or ExpiredLink otherwise."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise ForgedLink(token)
    payload = f"{parts[0]}.{parts[1]}"
    if not hmac.compare_digest(_mac(cfg.ack_secret, payload), parts[2]):
        raise ForgedLink(token)
    if int(parts[1]) < now.timestamp():
        raise ExpiredLink(token)
    return parts[0]
