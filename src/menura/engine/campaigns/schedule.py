"""When each recipient's message is due, by send strategy.

* immediate: now;
* static: the given time; with `is_local`, the given time's UTC wall-clock time in the recipient's
  own time zone (profile location, else the account's), and for recipients whose local time has
  already passed: now if `send_past_recipients_immediately`, else they are skipped;
* throttled: the recipients are sent in hourly waves of `throttle_percentage` percent of the
  audience, starting at the given time (the audience is counted once, when planning starts);
* smart send time: the given day at each recipient's best local hour (`smart_send_time`); a time
  already past is sent at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection

from menura.engine.campaigns import smart_send_time as sto
from menura.store import accounts as account_store

LOCAL_TIME_PASSED = "local_time_passed"


def account_zone(conn: Connection, account_id: str) -> tzinfo:
    account = account_store.get_account(conn, account_id)
    return sto.zone_named(account.timezone if account is not None else None) or UTC


def prepare(conn: Connection, account_id: str, strategy: dict[str, Any], audience_size: int | None,
            now: datetime) -> dict[str, Any]:
    """Facts fixed once per send (kept with the job, so a resumed job schedules the same way)."""
    method = strategy["method"]
    facts: dict[str, Any] = {"planned_at": now.isoformat()}
    if method == "throttled":
        percentage = int(strategy["throttle_percentage"])
        facts["per_hour"] = max(1, math.ceil((audience_size or 0) * percentage / 100))
    if method == "smart_send_time":
        facts["default_hour"] = sto.account_default_hour(conn, account_id, account_zone(conn, account_id), now)
    return facts


def due_times(conn: Connection, account_id: str, strategy: dict[str, Any], facts: dict[str, Any],
              profiles: Sequence[Any], first_index: int, now: datetime) -> dict[str, datetime | None]:
    """profile id -> when its message is due (None: skipped, its local time has passed)."""
    method = strategy["method"]
    if method == "immediate":
        return {p.id: now for p in profiles}
    if method == "throttled":
        start = datetime.fromisoformat(strategy["datetime"])
        per_hour = int(facts["per_hour"])
        return {p.id: start + timedelta(hours=(first_index + i) // per_hour) for i, p in enumerate(profiles)}
    default_zone = account_zone(conn, account_id)
    zones = {p.id: sto.profile_zone(p, default_zone) for p in profiles}
    if method == "smart_send_time":
        hours = sto.best_hours(conn, account_id, zones, now)
        default = int(facts.get("default_hour", sto.FALLBACK_HOUR))
        return {p.id: max(now, sto.at_local(strategy["date"], hours.get(p.id, default), zones[p.id]))
                for p in profiles}
    when = datetime.fromisoformat(strategy["datetime"])
    options = strategy.get("options") or {}
    if not options.get("is_local"):
        return {p.id: when for p in profiles}
    wall = when.astimezone(UTC).replace(tzinfo=None)
    due: dict[str, datetime | None] = {}
    for p in profiles:
        local = wall.replace(tzinfo=zones[p.id]).astimezone(UTC)
        if local >= now:
            due[p.id] = local
        else:
            due[p.id] = now if options.get("send_past_recipients_immediately") else None
    return due
