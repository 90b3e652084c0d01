"""Klaviyo-style rate limiting: two fixed windows per key, burst (1 s) and steady (60 s).

Behaviour copied from Klaviyo's published rules:

* every operation has a tier, e.g. ``3/s`` burst and ``60/m`` steady; a request is refused
  (HTTP 429) as soon as either window is over its limit;
* windows are fixed, aligned to the epoch: the burst window is ``floor(now)``, the steady
  window is ``floor(now / 60)``;
* an allowed response carries ``RateLimit-Limit``, ``RateLimit-Remaining`` and
  ``RateLimit-Reset``, all plain decimal integers describing the *steady* window (its limit,
  requests left in it, whole seconds until it ends);
* a refused response carries only ``Retry-After`` (whole seconds, at least 1); Klaviyo replaces
  the ``RateLimit-*`` headers with it rather than sending both.

Every hit counts, refused or not, in both windows (a plain counter per window, which is what
lets the Redis version do one INCR per window in a single round trip). A client that keeps
retrying inside a window therefore stays refused until that window ends, and a burst of
refused requests also uses up steady quota.

The ``key`` is chosen by the caller; Klaviyo keeps a quota per account for each endpoint, so
``f"{account_id}:{operation_id}"`` is the natural choice. ``now`` is also the caller's (unix
seconds); use wall-clock time, since a frozen clock never rolls a window over.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass, field
from typing import Protocol

import redis

log = logging.getLogger(__name__)

BURST_SECONDS = 1
STEADY_SECONDS = 60
REDIS_PREFIX = "menura:rl:"

_RATE = re.compile(r"\s*(\d+)\s*/\s*([a-z]+)\s*", re.IGNORECASE)


def _parse_rate(text: str, unit: str) -> int:
    match = _RATE.fullmatch(text)
    if match is None or match.group(2).lower() != unit:
        raise ValueError(f"rate {text!r} is not of the form N/{unit}")
    return int(match.group(1))


@dataclass(frozen=True)
class RateTier:
    burst: int  # requests per 1 s window
    steady: int  # requests per 60 s window

    def __post_init__(self) -> None:
        if self.burst < 1 or self.steady < 1:
            raise ValueError(f"rate limits must be positive, got {self.burst}/s and {self.steady}/m")

    @classmethod
    def parse(cls, burst: str, steady: str) -> RateTier:
        """Build a tier from the API spec's strings, e.g. ``parse("3/s", "60/m")``."""
        return cls(_parse_rate(burst, "s"), _parse_rate(steady, "m"))

    def scaled(self, factor: float) -> RateTier:
        """Both limits multiplied by ``factor``, rounded, never below 1."""
        return RateTier(max(1, round(self.burst * factor)), max(1, round(self.steady * factor)))


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: int = 0  # whole seconds, >= 1 when refused, else 0


class RateLimiter(Protocol):
    def hit(self, key: str, tier: RateTier, now: float) -> RateDecision:
        """Count one request for ``key`` at unix time ``now`` and say whether it may proceed."""
        ...


def _decide(tier: RateTier, now: float, burst_count: int, steady_count: int) -> RateDecision:
    """The decision for a hit, given both window counts *including* this hit."""
    steady_window = math.floor(now / STEADY_SECONDS)
    steady_left = max(1, math.ceil((steady_window + 1) * STEADY_SECONDS - now))
    if steady_count > tier.steady:
        wait = steady_left
    elif burst_count > tier.burst:
        wait = BURST_SECONDS  # the burst window always ends within one whole second
    else:
        headers = {
            "RateLimit-Limit": str(tier.steady),
            "RateLimit-Remaining": str(max(0, tier.steady - steady_count)),
            "RateLimit-Reset": str(steady_left),
        }
        return RateDecision(True, headers, 0)
    return RateDecision(False, {"Retry-After": str(wait)}, wait)


class NoRateLimiter:
    """Rate limiting switched off: everything allowed, no headers."""

    def hit(self, key: str, tier: RateTier, now: float) -> RateDecision:
        return RateDecision(True, {}, 0)


class MemoryRateLimiter:
    """Counters in this process only; thread-safe. Windows older than the previous one are dropped."""

    def __init__(self, scale: float = 1.0) -> None:
        self._scale = scale
        self._lock = threading.Lock()
        self._burst: dict[tuple[str, int], int] = {}
        self._steady: dict[tuple[str, int], int] = {}
        self._pruned_burst = -1
        self._pruned_steady = -1

    def hit(self, key: str, tier: RateTier, now: float) -> RateDecision:
        tier = tier.scaled(self._scale) if self._scale != 1.0 else tier
        burst_window = math.floor(now)
        steady_window = math.floor(now / STEADY_SECONDS)
        with self._lock:
            if burst_window > self._pruned_burst:
                self._burst = {k: n for k, n in self._burst.items() if k[1] >= burst_window - 1}
                self._pruned_burst = burst_window
            if steady_window > self._pruned_steady:
                self._steady = {k: n for k, n in self._steady.items() if k[1] >= steady_window - 1}
                self._pruned_steady = steady_window
            burst_count = self._burst.get((key, burst_window), 0) + 1
            steady_count = self._steady.get((key, steady_window), 0) + 1
            self._burst[(key, burst_window)] = burst_count
            self._steady[(key, steady_window)] = steady_count
        return _decide(tier, now, burst_count, steady_count)


class RedisRateLimiter:
    """Counters in Redis, shared by every process using the same server and prefix.

    One pipelined round trip (MULTI/EXEC) per hit: INCR and EXPIRE on the burst key and on the
    steady key. If Redis cannot be reached the request is allowed (without headers) and a
    warning is logged, so an outage of the limiter never takes the API down with it.
    """

    def __init__(self, client: redis.Redis, scale: float = 1.0, prefix: str = REDIS_PREFIX) -> None:
        self._client = client
        self._scale = scale
        self._prefix = prefix

    @classmethod
    def from_url(cls, url: str, scale: float = 1.0, prefix: str = REDIS_PREFIX) -> RedisRateLimiter:
        client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        return cls(client, scale=scale, prefix=prefix)

    def close(self) -> None:
        self._client.close()

    def hit(self, key: str, tier: RateTier, now: float) -> RateDecision:
        tier = tier.scaled(self._scale) if self._scale != 1.0 else tier
        burst_key = f"{self._prefix}{key}:b:{math.floor(now)}"
        steady_key = f"{self._prefix}{key}:s:{math.floor(now / STEADY_SECONDS)}"
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(burst_key)
                pipe.expire(burst_key, 2 * BURST_SECONDS)  # outlive the window, allowing some clock skew
                pipe.incr(steady_key)
                pipe.expire(steady_key, 2 * STEADY_SECONDS)
                burst_count, _, steady_count, _ = pipe.execute()
        except redis.RedisError as exc:
            log.warning("rate limiter: Redis unavailable, allowing request: %s", exc)
            return RateDecision(True, {}, 0)
        return _decide(tier, now, int(burst_count), int(steady_count))


def make_rate_limiter(scale: float | None, redis_url: str) -> RateLimiter:
    """``scale`` None switches limits off; otherwise Klaviyo's limits times ``scale`` (each at
    least 1), counted in Redis when ``redis_url`` is set, else in this process."""
    if scale is None:
        return NoRateLimiter()
    if not math.isfinite(scale) or scale < 0:
        raise ValueError(f"rate limit scale must be a finite number >= 0, got {scale!r}")
    if redis_url:
        return RedisRateLimiter.from_url(redis_url, scale=scale)
    return MemoryRateLimiter(scale=scale)
