import threading

import pytest

from menura.ratelimit import (
    MemoryRateLimiter,
    NoRateLimiter,
    RateDecision,
    RateTier,
    RedisRateLimiter,
    make_rate_limiter,
)

S = RateTier(burst=3, steady=60)
# 6000 is the start of a steady window (100 * 60) and of a burst window.
T0 = 6000.0


def hits(limiter, n, now, key="acct:op", tier=S):
    return [limiter.hit(key, tier, now) for _ in range(n)]


# --- RateTier ---------------------------------------------------------------------------


def test_parse_spec_strings():
    assert RateTier.parse("3/s", "60/m") == RateTier(3, 60)
    assert RateTier.parse(" 350 / s", "3500/M") == RateTier(350, 3500)


@pytest.mark.parametrize(
    ("burst", "steady"),
    [("3/m", "60/m"), ("3/s", "60/s"), ("3", "60/m"), ("x/s", "60/m"), ("3/s", "60/d"), ("0/s", "1/m")],
)
def test_parse_rejects_bad_strings(burst, steady):
    with pytest.raises(ValueError):
        RateTier.parse(burst, steady)


def test_scaled_rounds_and_never_drops_below_one():
    assert S.scaled(10) == RateTier(30, 600)
    assert S.scaled(0.5) == RateTier(2, 30)
    assert RateTier(700, 700).scaled(0.7) == RateTier(490, 490)  # 489.99999 rounds, not floors
    assert S.scaled(0.01) == RateTier(1, 1)
    assert S.scaled(0) == RateTier(1, 1)


# --- windows ----------------------------------------------------------------------------


def test_burst_refused_within_one_second():
    limiter = MemoryRateLimiter()
    decisions = hits(limiter, 4, T0 + 0.1)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    refused = decisions[-1]
    assert refused.retry_after == 1
    assert refused.headers == {"Retry-After": "1"}


def test_burst_window_rolls_over_on_the_next_second():
    limiter = MemoryRateLimiter()
    assert all(d.allowed for d in hits(limiter, 3, T0 + 0.2))
    assert not limiter.hit("acct:op", S, T0 + 0.99).allowed
    assert all(d.allowed for d in hits(limiter, 3, T0 + 1.0))
    assert not limiter.hit("acct:op", S, T0 + 1.5).allowed


def test_steady_refused_within_a_minute_and_retry_after_counts_to_window_end():
    limiter = MemoryRateLimiter()
    # 3 per second for 20 seconds uses the whole steady quota without touching the burst limit.
    for second in range(20):
        assert all(d.allowed for d in hits(limiter, 3, T0 + second))
    refused = limiter.hit("acct:op", S, T0 + 20.25)
    assert not refused.allowed
    assert refused.retry_after == 40  # ceil(6060 - 6020.25)
    assert refused.headers == {"Retry-After": "40"}
    late = limiter.hit("acct:op", S, T0 + 59.5)
    assert (late.allowed, late.retry_after) == (False, 1)
    # the next steady window starts fresh
    assert all(d.allowed for d in hits(limiter, 3, T0 + 60))


def test_refused_hits_count_in_both_windows():
    limiter = MemoryRateLimiter()
    tier = RateTier(burst=3, steady=10)
    # 3 allowed, 9 refused in the first second: the steady window already holds 12 hits.
    assert sum(d.allowed for d in hits(limiter, 12, T0, tier=tier)) == 3
    later = limiter.hit("acct:op", tier, T0 + 5)
    assert not later.allowed
    assert later.retry_after == 55


def test_success_headers_describe_the_steady_window():
    limiter = MemoryRateLimiter()
    first = limiter.hit("acct:op", S, T0 + 12.3)
    assert first == RateDecision(
        True, {"RateLimit-Limit": "60", "RateLimit-Remaining": "59", "RateLimit-Reset": "48"}, 0
    )
    second = limiter.hit("acct:op", S, T0 + 12.4)
    assert second.headers["RateLimit-Remaining"] == "58"
    at_start = limiter.hit("other", S, T0)
    assert at_start.headers["RateLimit-Reset"] == "60"
    near_end = limiter.hit("other2", S, T0 + 59.999)
    assert near_end.headers["RateLimit-Reset"] == "1"


def test_remaining_reaches_zero_on_last_allowed_request():
    limiter = MemoryRateLimiter()
    tier = RateTier(burst=5, steady=5)
    decisions = hits(limiter, 6, T0, tier=tier)
    assert [d.headers.get("RateLimit-Remaining") for d in decisions[:5]] == ["4", "3", "2", "1", "0"]
    assert not decisions[5].allowed
    assert "RateLimit-Remaining" not in decisions[5].headers


def test_keys_are_independent():
    limiter = MemoryRateLimiter()
    assert all(d.allowed for d in hits(limiter, 3, T0, key="a:get-profiles"))
    assert all(d.allowed for d in hits(limiter, 3, T0, key="a:get-lists"))
    assert all(d.allowed for d in hits(limiter, 3, T0, key="b:get-profiles"))
    assert not limiter.hit("a:get-profiles", S, T0).allowed


def test_old_windows_are_pruned():
    limiter = MemoryRateLimiter()
    for i in range(500):
        limiter.hit(f"key{i}", S, T0 + i * 0.5)
    # only the current and the previous window of each kind survive
    assert {w for _, w in limiter._burst} <= {int(T0) + 248, int(T0) + 249}
    assert {w for _, w in limiter._steady} <= {103, 104}
    assert len(limiter._burst) <= 4
    assert len(limiter._steady) <= 240


# --- scale, factory, no limiter ---------------------------------------------------------


def test_scale_multiplies_limits():
    limiter = MemoryRateLimiter(scale=2)
    decisions = hits(limiter, 7, T0)
    assert [d.allowed for d in decisions] == [True] * 6 + [False]
    assert decisions[0].headers["RateLimit-Limit"] == "120"


def test_make_rate_limiter():
    assert isinstance(make_rate_limiter(None, ""), NoRateLimiter)
    assert isinstance(make_rate_limiter(None, "redis://127.0.0.1:6379/0"), NoRateLimiter)
    memory = make_rate_limiter(0.1, "")
    assert isinstance(memory, MemoryRateLimiter)
    # 3/s * 0.1 -> at least 1
    assert [d.allowed for d in hits(memory, 2, T0)] == [True, False]
    assert memory.hit("x", S, T0).headers["RateLimit-Limit"] == "6"
    redis_limiter = make_rate_limiter(1.0, "redis://127.0.0.1:1/0")
    assert isinstance(redis_limiter, RedisRateLimiter)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            make_rate_limiter(bad, "")


def test_no_rate_limiter_always_allows():
    limiter = NoRateLimiter()
    for d in hits(limiter, 1000, T0):
        assert d == RateDecision(True, {}, 0)


def test_redis_unreachable_fails_open():
    limiter = RedisRateLimiter.from_url("redis://127.0.0.1:1/0")
    decision = limiter.hit("acct:op", S, T0)
    assert decision == RateDecision(True, {}, 0)


# --- threads ----------------------------------------------------------------------------


def test_thread_safety_exact_counts():
    limiter = MemoryRateLimiter()
    tier = RateTier(burst=500, steady=1000)
    results: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def worker():
        start.wait()
        mine = [limiter.hit("shared", tier, T0 + 0.5).allowed for _ in range(100)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1600
    assert sum(results) == 500  # exactly the burst limit, no lost or double counts
    assert limiter._burst[("shared", int(T0))] == 1600
