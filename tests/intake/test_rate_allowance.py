"""The per-process allowance of the API-key rate limit (intake_svc.ratelimit.LocalAllowance)."""
from __future__ import annotations

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from intake_svc.ratelimit import NAMESPACE, LocalAllowance, allowance_size


class CountingLimiter(MovingWindowRateLimiter):
    def __init__(self):
        super().__init__(MemoryStorage())
        self.calls = []

    def hit(self, item, *identifiers, cost=1):
        self.calls.append(cost)
        return super().hit(item, *identifiers, cost=cost)


def test_a_low_limit_takes_one_hit_at_a_time():
    assert allowance_size(parse("600/minute")) == 1
    limiter = CountingLimiter()
    allowance = LocalAllowance(limiter)
    item = parse("3/minute")
    assert [allowance.hit(item, "k") for _ in range(4)] == [True, True, True, False]
    assert limiter.calls == [1, 1, 1, 1]


def test_a_busy_key_costs_one_shared_hit_per_allowance():
    limiter = CountingLimiter()
    allowance = LocalAllowance(limiter)
    item = parse("6000/minute")  # 100 per second: 5 hits per 50 ms
    assert allowance_size(item) == 5
    assert all(allowance.hit(item, "k") for _ in range(10))
    assert limiter.calls == [5, 5]
    # every hit taken is counted in the shared window
    assert limiter.get_window_stats(item, NAMESPACE, "k").remaining == 6000 - 10


def test_never_more_than_the_limit_and_exactly_the_limit_near_it():
    limiter = CountingLimiter()
    allowance = LocalAllowance(limiter)
    item = parse("102/hour")
    assert allowance_size(item) == 1  # far below one per 50 ms
    item = parse("102/second")  # 5 per allowance
    allowed = sum(allowance.hit(item, "k") for _ in range(120))
    assert allowed == 102  # 20 allowances of 5, then the last 2 one at a time
    assert limiter.calls[-3:] == [1, 5, 1]


def test_keys_and_limits_have_their_own_allowances():
    limiter = CountingLimiter()
    allowance = LocalAllowance(limiter)
    item = parse("6000/minute")
    assert allowance.hit(item, "a") and allowance.hit(item, "b")
    assert limiter.calls == [5, 5]
