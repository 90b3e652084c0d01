import os
import threading
import uuid

import pytest
import redis

from menura.ratelimit import REDIS_PREFIX, RateDecision, RateTier, RedisRateLimiter, make_rate_limiter

REDIS_URL = os.environ.get("MENURA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
S = RateTier(burst=3, steady=60)
T0 = 6000.0  # start of a steady window


def _reachable() -> str | None:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"Redis at {REDIS_URL} is unreachable ({exc})"
    return None


_SKIP = _reachable()
if _SKIP:
    print(f"skipping Redis rate limit tests: {_SKIP}")
pytestmark = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")


@pytest.fixture
def client():
    c = redis.Redis.from_url(REDIS_URL)
    yield c
    c.close()


@pytest.fixture
def prefix(client):
    p = f"{REDIS_PREFIX}test:{uuid.uuid4().hex}:"
    yield p
    keys = list(client.scan_iter(match=f"{p}*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def limiter(prefix):
    rl = RedisRateLimiter.from_url(REDIS_URL, prefix=prefix)
    yield rl
    rl.close()


def hits(limiter, n, now, key="acct:op", tier=S):
    return [limiter.hit(key, tier, now) for _ in range(n)]


def test_burst_refused_within_one_second(limiter):
    decisions = hits(limiter, 4, T0 + 0.1)
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[-1] == RateDecision(False, {"Retry-After": "1"}, 1)


def test_burst_window_rolls_over(limiter):
    assert all(d.allowed for d in hits(limiter, 3, T0 + 0.2))
    assert not limiter.hit("acct:op", S, T0 + 0.9).allowed
    assert all(d.allowed for d in hits(limiter, 3, T0 + 1.0))


def test_steady_refused_within_a_minute(limiter):
    for second in range(20):
        assert all(d.allowed for d in hits(limiter, 3, T0 + second))
    refused = limiter.hit("acct:op", S, T0 + 20.25)
    assert refused == RateDecision(False, {"Retry-After": "40"}, 40)
    assert all(d.allowed for d in hits(limiter, 3, T0 + 60))


def test_success_headers(limiter):
    first = limiter.hit("acct:op", S, T0 + 12.3)
    assert first == RateDecision(
        True, {"RateLimit-Limit": "60", "RateLimit-Remaining": "59", "RateLimit-Reset": "48"}, 0
    )
    assert limiter.hit("acct:op", S, T0 + 12.4).headers["RateLimit-Remaining"] == "58"


def test_scale(prefix):
    rl = RedisRateLimiter.from_url(REDIS_URL, scale=2, prefix=prefix)
    decisions = hits(rl, 7, T0)
    assert [d.allowed for d in decisions] == [True] * 6 + [False]
    assert decisions[0].headers["RateLimit-Limit"] == "120"
    rl.close()


def test_two_instances_share_counts(prefix):
    a = RedisRateLimiter.from_url(REDIS_URL, prefix=prefix)
    b = RedisRateLimiter.from_url(REDIS_URL, prefix=prefix)
    assert a.hit("acct:op", S, T0).allowed
    assert b.hit("acct:op", S, T0).allowed
    third = a.hit("acct:op", S, T0)
    assert third.headers["RateLimit-Remaining"] == "57"
    assert not b.hit("acct:op", S, T0).allowed
    # other keys are untouched
    assert b.hit("acct:other-op", S, T0).allowed
    a.close()
    b.close()


def test_keys_use_prefix_and_expire(limiter, client, prefix):
    limiter.hit("acct:op", S, T0 + 5.5)
    burst_key = f"{prefix}acct:op:b:{int(T0) + 5}"
    steady_key = f"{prefix}acct:op:s:{int(T0) // 60}"
    assert int(client.get(burst_key)) == 1
    assert int(client.get(steady_key)) == 1
    assert 0 < client.ttl(burst_key) <= 2
    assert 60 < client.ttl(steady_key) <= 120


def test_default_prefix(client):
    key = f"test-{uuid.uuid4().hex}"
    rl = make_rate_limiter(1.0, REDIS_URL)
    assert isinstance(rl, RedisRateLimiter)
    try:
        rl.hit(key, S, T0)
        assert sorted(k.decode() for k in client.scan_iter(match=f"menura:rl:{key}:*")) == [
            f"menura:rl:{key}:b:{int(T0)}",
            f"menura:rl:{key}:s:{int(T0) // 60}",
        ]
    finally:
        client.delete(f"menura:rl:{key}:b:{int(T0)}", f"menura:rl:{key}:s:{int(T0) // 60}")
        rl.close()


def test_concurrent_instances_count_exactly(prefix):
    tier = RateTier(burst=100, steady=1000)
    limiters = [RedisRateLimiter.from_url(REDIS_URL, prefix=prefix) for _ in range(4)]
    results: list[bool] = []
    lock = threading.Lock()

    def worker(rl):
        mine = [rl.hit("shared", tier, T0 + 0.5).allowed for _ in range(50)]
        with lock:
            results.extend(mine)

    threads = [threading.Thread(target=worker, args=(limiters[i % 4],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 400
    assert sum(results) == 100
    for rl in limiters:
        rl.close()
