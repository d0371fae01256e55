"""Request limits per API key (限流): Redis-backed in the distributed mode, in memory otherwise.
Beyond the limit: 429 with ``Retry-After``.

A key allowed many requests per second does not cost a Redis round trip per request: each process
takes a small allowance of hits at once (``LocalAllowance``: what the key may send in about
``ALLOWANCE_SECONDS`` at its full rate, at most ``MAX_ALLOWANCE``) and spends it locally.  The hits
are counted in the shared moving window when they are taken, so a key never gets more than its
limit; at worst a process's unspent allowance makes the key meet its limit a little early.  A key
with a limit below ``1 / ALLOWANCE_SECONDS`` per second takes one hit at a time, as before.
"""
from __future__ import annotations

import functools
import math
import threading
import time

from flask import Flask, g, request
from flask_smorest import abort
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from shared.config import Settings

NAMESPACE = "xinfang-intake"
_parse = functools.lru_cache(maxsize=256)(parse)  # a key's limit string, parsed once
#: An allowance covers about this long at the key's full rate …
ALLOWANCE_SECONDS = 0.05
#: … but never more hits than this, and is dropped (its hits stay counted) when older than this.
MAX_ALLOWANCE = 64
ALLOWANCE_TTL_SECONDS = 1.0


def allowance_size(item: RateLimitItem) -> int:
    """Hits taken at once for ``item``: 1 unless the limit allows more than one per ``ALLOWANCE_SECONDS``."""
    per_second = item.amount / item.get_expiry()
    return max(1, min(MAX_ALLOWANCE, int(per_second * ALLOWANCE_SECONDS)))


class LocalAllowance:
    """Hits of the shared limiter taken ahead by this process, per (limit, key)."""

    def __init__(self, limiter: MovingWindowRateLimiter) -> None:
        self.limiter = limiter
        self._left: dict[tuple[str, str], tuple[int, float]] = {}
        self._lock = threading.Lock()

    def hit(self, item: RateLimitItem, key: str) -> bool:
        slot = (str(item), key)
        now = time.monotonic()
        with self._lock:
            left, taken_at = self._left.get(slot, (0, 0.0))
            if left > 0 and now - taken_at < ALLOWANCE_TTL_SECONDS:
                self._left[slot] = (left - 1, taken_at)
                return True
        size = allowance_size(item)
        if size > 1 and self.limiter.hit(item, NAMESPACE, key, cost=size):
            with self._lock:
                self._left[slot] = (size - 1, now)
            return True
        return self.limiter.hit(item, NAMESPACE, key)  # one at a time near the limit


def install(app: Flask, settings: Settings) -> None:
    storage = storage_from_string(settings.broker_url or "memory://")
    limiter = MovingWindowRateLimiter(storage)
    allowance = LocalAllowance(limiter)
    default = parse(settings.rate_limit)

    @app.before_request
    def _limit():
        principal = getattr(g, "principal", None)
        if principal is None or principal.role != "county_system":
            return None
        custom = request.environ.get("xinfang.rate_limit")
        item = _parse(custom) if custom else default
        if allowance.hit(item, principal.user_id):
            return None
        reset_at, _remaining = limiter.get_window_stats(item, NAMESPACE, principal.user_id)
        retry = max(1, math.ceil(reset_at - time.time()))
        abort(429, message=f"rate limit {item} exceeded for this API key; retry in {retry}s",
              headers={"Retry-After": str(retry)})
        return None
