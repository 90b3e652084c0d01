"""Entered / left segment signals: what flows (and segments built on segments) subscribe to.

A signal is emitted inside the transaction that changes the membership, once per profile and
segment, so a subscriber that writes (a flow enqueueing its first step) commits or rolls back
together with the change it reacts to. Subscribers must not open their own transactions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection


@dataclass(frozen=True, slots=True)
class MembershipChange:
    account_id: str
    segment_id: str
    profile_id: str
    entered: bool  # False: left
    at: datetime


Subscriber = Callable[[Connection, Sequence[MembershipChange]], None]
_subscribers: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> Subscriber:
    """Register (idempotently) a function called with every batch of membership changes."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)
    return subscriber


def unsubscribe(subscriber: Subscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def emit(conn: Connection, changes: Sequence[MembershipChange]) -> None:
    if not changes:
        return
    for subscriber in list(_subscribers):
        subscriber(conn, changes)
