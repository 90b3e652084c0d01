"""The one clock all code reads. Nothing else may call datetime.now().

`system` follows the machine's time. `virtual` is frozen until set or advanced (CLI
`menura clock advance 3d` or the /menura/clock endpoint); it lives in the database so every
API and worker process agrees on it, and due work then runs as if that time had passed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

from menura.store import server_state
from menura.store.db import Database

_CLOCK_KEY = "virtual_clock"
_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>w|d|h|m|s)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def system_now() -> datetime:
    return datetime.now(UTC)


class Clock(Protocol):
    virtual: bool

    def now(self) -> datetime: ...


class SystemClock:
    virtual = False

    def now(self) -> datetime:
        return system_now()


class VirtualClock:
    virtual = True

    def __init__(self, db: Database) -> None:
        self._db = db

    def now(self) -> datetime:
        with self._db.read() as conn:
            value = server_state.get_value(conn, _CLOCK_KEY)
        if value is None:
            return self.set(system_now().replace(microsecond=0))
        return datetime.fromisoformat(value)

    def set(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        with self._db.write() as conn:
            server_state.set_value(conn, _CLOCK_KEY, when.astimezone(UTC).isoformat())
        return when.astimezone(UTC)

    def advance(self, delta: timedelta) -> datetime:
        with self._db.write() as conn:
            value = server_state.get_value(conn, _CLOCK_KEY)
            base = datetime.fromisoformat(value) if value else system_now().replace(microsecond=0)
            new = base + delta
            server_state.set_value(conn, _CLOCK_KEY, new.isoformat())
        return new


def parse_duration(text: str) -> timedelta:
    """Parse '3d', '1h30m', '90s', '2w' into a timedelta."""
    compact = text.replace(" ", "").lower()
    pos, seconds = 0, 0.0
    for match in _DURATION.finditer(compact):
        if match.start() != pos:
            break
        seconds += float(match["n"]) * _UNIT_SECONDS[match["unit"]]
        pos = match.end()
    if pos != len(compact) or not compact:
        raise ValueError(f"not a duration: {text!r} (use e.g. 3d, 1h30m, 90s)")
    return timedelta(seconds=seconds)


def make_clock(kind: str, db: Database) -> Clock:
    return VirtualClock(db) if kind == "virtual" else SystemClock()
