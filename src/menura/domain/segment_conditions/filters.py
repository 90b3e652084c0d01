"""Filters a condition applies to a value: dates (absolute, relative, anniversaries) and every other kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

UNIT_SECONDS = {"hour": 3600, "day": 86400, "week": 604800}


RELATIVE_DATE_OPERATORS = frozenset({"at-least", "in-the-last", "in-the-next", "between", "anniversary-last",
                                     "anniversary-next", "anniversary", "anniversary-month"})


@dataclass(frozen=True)
class Interval:
    """lo < t (or <=) and t < hi (or <=); None is unbounded."""

    lo: datetime | None
    hi: datetime | None
    lo_inclusive: bool = True
    hi_inclusive: bool = True


@dataclass(frozen=True)
class DateFilter:
    operator: str
    date: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    unit: str | None = None
    quantity: int | None = None
    range_start: int | None = None
    range_end: int | None = None
    month: int | None = None

    @property
    def relative(self) -> bool:
        return self.operator in RELATIVE_DATE_OPERATORS

    def interval(self, now: datetime) -> Interval | None:
        """The time range a date must fall in, for every operator that is a range (None otherwise)."""
        op = self.operator
        step = timedelta(seconds=UNIT_SECONDS[self.unit]) if self.unit else timedelta(0)
        if op == "after":
            return Interval(self.date, None, lo_inclusive=False)
        if op == "before":
            return Interval(None, self.date, hi_inclusive=False)
        if op == "between-static":
            return Interval(self.start, self.end)
        if op == "in-the-last":
            return Interval(now - step * (self.quantity or 0), now)
        if op == "at-least":
            return Interval(None, now - step * (self.quantity or 0))
        if op == "in-the-next":
            return Interval(now, now + step * (self.quantity or 0))
        if op == "between":
            near, far = sorted((self.range_start or 0, self.range_end or 0))
            return Interval(now - step * far, now - step * near)
        if op == "alltime":
            return Interval(None, None)
        return None

    def anniversary_window(self, now: datetime) -> tuple[datetime, datetime] | None:
        step = timedelta(seconds=UNIT_SECONDS[self.unit]) if self.unit else timedelta(0)
        if self.operator == "anniversary-last":
            return now - step * (self.quantity or 0), now
        if self.operator == "anniversary-next":
            return now, now + step * (self.quantity or 0)
        return None


def anniversary_key(when: datetime) -> str:
    """Month, day and time of day in UTC: equal keys are anniversaries of each other."""
    return when.astimezone(UTC).strftime("%m-%d %H:%M:%S")


def anniversary_range(lo: datetime, hi: datetime) -> tuple[str, str] | None:
    """Keys (lo, hi) of an anniversary window; a range with lo > hi wraps over the new year. None
    when the window is a year or longer: every date has an anniversary in it."""
    if hi - lo >= timedelta(days=365):
        return None
    return anniversary_key(lo), anniversary_key(hi)


@dataclass(frozen=True)
class ValueFilter:
    """Every non-date filter: `kind` says which family (string, numeric, list_set, ...)."""

    kind: str
    operator: str
    value: Any = None
    start: float | None = None  # numeric ranges
    end: float | None = None


Filter = DateFilter | ValueFilter
