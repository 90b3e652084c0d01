"""Sandbox limits, and the per-render state that enforces them.

Django renders synchronously, so limits are checked cooperatively: every loop iteration and every
piece of output ticks the budget, every filter call checks the size of what it made, and each tick
compares the clock with the deadline. Without loops a render is linear in the template's size, so
these checks bound both time and memory."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from menura.templating.errors import RenderLimitError


@dataclass(frozen=True)
class Limits:
    max_source_chars: int = 2_000_000
    max_iterations: int = 200_000  # loop iterations in one render, all loops together
    max_output_chars: int = 5_000_000
    max_value_chars: int = 1_000_000  # any one string or list a filter produces
    max_width: int = 10_000  # width/precision arguments (ljust, center, floatformat, stringformat)
    max_seconds: float = 2.0


DEFAULT_LIMITS = Limits()


@dataclass
class RenderEnv:
    """What a render may know besides its context: the clock, the account's timezone and currency,
    and the per-recipient links and coupon codes the dispatcher provides."""

    now: datetime = field(default_factory=lambda: datetime.fromtimestamp(0, UTC))
    timezone: tzinfo = UTC  # account timezone: date tags use it
    currency: str = "USD"
    links: Mapping[str, str] = field(default_factory=dict)  # unsubscribe / manage_preferences / web_view
    coupon_code: Callable[[str], str] | None = None


class RenderState:
    """Counters for one render."""

    __slots__ = ("deadline", "env", "iterations", "limits", "output")

    def __init__(self, limits: Limits, env: RenderEnv) -> None:
        self.limits = limits
        self.env = env
        self.iterations = 0
        self.output = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def iterate(self) -> None:
        self.iterations += 1
        if self.iterations > self.limits.max_iterations:
            raise RenderLimitError(f"loops ran more than {self.limits.max_iterations} iterations")
        self.check_time()

    def emit(self, chars: int) -> None:
        self.output += chars
        if self.output > self.limits.max_output_chars:
            raise RenderLimitError(f"output exceeds {self.limits.max_output_chars} characters")

    def check_value(self, value: Any) -> None:
        if isinstance(value, str | list | tuple) and len(value) > self.limits.max_value_chars:
            raise RenderLimitError(f"a value exceeds {self.limits.max_value_chars} characters or items")

    def check_width(self, width: int) -> None:
        if abs(width) > self.limits.max_width:
            raise RenderLimitError(f"width or precision {width} exceeds {self.limits.max_width}")

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitError(f"rendering took longer than {self.limits.max_seconds} seconds")


_STATE: ContextVar[RenderState | None] = ContextVar("menura_render_state", default=None)


def current() -> RenderState:
    state = _STATE.get()
    if state is None:  # a filter or tag called outside render(): apply the default limits
        state = RenderState(DEFAULT_LIMITS, RenderEnv())
    return state


def activate(state: RenderState) -> Any:
    return _STATE.set(state)


def deactivate(token: Any) -> None:
    _STATE.reset(token)
