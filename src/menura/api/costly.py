"""Extra rate-limit tiers Klaviyo applies on top of an operation's own when a request asks for costlier data."""

from __future__ import annotations

import time

from menura.api.operation import Ctx
from menura.jsonapi import errors
from menura.ratelimit import RateTier


def limit_costly(ctx: Ctx, label: str, rate: RateTier) -> None:
    """Count the request against an extra tier too (e.g. `include=lists`); 429 when it is used up."""
    decision = ctx.services.rate_limiter.hit(f"{ctx.account_id}:{ctx.operation.operation_id}:{label}", rate,
                                             time.time())
    if not decision.allowed:
        err = errors.throttled(decision.retry_after)
        err.headers.update(decision.headers)
        raise err
