"""Smart send time: each recipient's best hour of the day, from when they engaged before.

A profile's best hour is the local hour (in its own time zone) at which it opened or clicked most
often over the last 180 days, given at least `MIN_EVENTS` such events. Profiles with too little
history get the account's default: the hour its audience as a whole engages most, from the
account's latest engagement events, or `FALLBACK_HOUR` when the account has none yet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection

from menura.store import campaigns as store

ENGAGEMENT_METRICS = ("Opened Email", "Clicked Email", "Clicked SMS")
HISTORY = timedelta(days=180)
MIN_EVENTS = 3
FALLBACK_HOUR = 10
ACCOUNT_SAMPLE = 5000


def zone_named(name: Any) -> tzinfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def profile_zone(profile: Any, default: tzinfo) -> tzinfo:
    """The recipient's time zone: its location's `timezone`, else the account's."""
    location = profile.location if isinstance(getattr(profile, "location", None), Mapping) else {}
    return zone_named(location.get("timezone")) or default


def best_hour(times: Collection[datetime], zone: tzinfo) -> int | None:
    if len(times) < MIN_EVENTS:
        return None
    counts = Counter(t.astimezone(zone).hour for t in times)
    # Most engagement first; the earlier hour wins a tie, so the answer is deterministic.
    return min(counts, key=lambda hour: (-counts[hour], hour))


def account_default_hour(conn: Connection, account_id: str, zone: tzinfo, now: datetime) -> int:
    times = [t for _, t in store.engagement_times(conn, account_id, ENGAGEMENT_METRICS, now - HISTORY,
                                                  limit=ACCOUNT_SAMPLE)]
    hour = best_hour(times, zone)
    return FALLBACK_HOUR if hour is None else hour


def best_hours(conn: Connection, account_id: str, zones: Mapping[str, tzinfo], now: datetime) -> dict[str, int]:
    """profile id -> best local hour, for the profiles with enough history."""
    by_profile: dict[str, list[datetime]] = {}
    for profile_id, when in store.engagement_times(conn, account_id, ENGAGEMENT_METRICS, now - HISTORY,
                                                   profile_ids=list(zones)):
        by_profile.setdefault(profile_id, []).append(when)
    found: dict[str, int] = {}
    for profile_id, times in by_profile.items():
        hour = best_hour(times, zones[profile_id])
        if hour is not None:
            found[profile_id] = hour
    return found


def at_local(day: str, hour: int, zone: tzinfo) -> datetime:
    """`day` (YYYY-MM-DD) at `hour`:00 in `zone`, as UTC."""
    local = datetime.fromisoformat(day).replace(hour=hour, tzinfo=zone)
    return local.astimezone(UTC)
