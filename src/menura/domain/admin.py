"""Operator actions beyond Klaviyo: account state reset (test isolation) and the clock."""

from __future__ import annotations

from datetime import datetime

from menura.clock import Clock, VirtualClock, parse_duration
from menura.store import accounts as store
from menura.store.db import Database


def reset_account(db: Database, account_id: str) -> bool:
    """Delete everything the account owns, keeping the account and its keys (like moto's reset)."""
    with db.write() as conn:
        if not store.account_exists(conn, account_id):
            return False
        store.delete_account_data(conn, account_id)
    return True


class ClockNotVirtual(Exception):
    pass


def change_clock(clock: Clock, *, set_to: datetime | None = None, advance: str | None = None) -> datetime:
    if not isinstance(clock, VirtualClock):
        raise ClockNotVirtual("the clock is the system clock; start the server with --clock virtual")
    if set_to is not None:
        return clock.set(set_to)
    if advance is not None:
        return clock.advance(parse_duration(advance))
    return clock.now()
