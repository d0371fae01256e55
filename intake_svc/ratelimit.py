"""Request limits per API key (限流): Redis-backed in the distributed mode, in memory otherwise.
Beyond the limit: 429 with ``Retry-After``."""
from __future__ import annotations

import math
import time

from flask import Flask, g, request
from flask_smorest import abort
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from shared.config import Settings


def install(app: Flask, settings: Settings) -> None:
    storage = storage_from_string(settings.broker_url or "memory://")
    limiter = MovingWindowRateLimiter(storage)
    default = parse(settings.rate_limit)

    @app.before_request
    def _limit():
        principal = getattr(g, "principal", None)
        if principal is None or principal.role != "county_system":
            return None
        custom = request.environ.get("xinfang.rate_limit")
        item = parse(custom) if custom else default
        if limiter.hit(item, "xinfang-intake", principal.user_id):
            return None
        reset_at, _remaining = limiter.get_window_stats(item, "xinfang-intake", principal.user_id)
        retry = max(1, math.ceil(reset_at - time.time()))
        abort(429, message=f"rate limit {item} exceeded for this API key; retry in {retry}s",
              headers={"Retry-After": str(retry)})
        return None
