"""Segment reports: members added, removed, net change and total, over a time frame (values) or
per interval (series), read from the recorded history of entries and exits.

Rules from the spec's SegmentValuesRequestDTO / SegmentSeriesRequestDTO: a time frame is a named
key or a custom start/end whose offset is ignored in favour of the account's time zone; at most
one year; no data before 2023-06-01; hourly series cover at most 7 days, daily at most 60 days,
monthly at most 52 weeks; the filter takes `segment_id` with `equals` or `any` (at most 100 ids).
Choices the spec leaves open: "last N days" ends now; weeks start on Monday; `today`, `this_*`
end now; `yesterday`, `last_week`, `last_month`, `last_year` are whole calendar periods; series
buckets start at the time frame's start, in the account's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection

from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError
from menura.jsonapi.filters import BoolOp, Condition, FilterField, validate_filter
from menura.store import segments as store

STATISTICS = ("members_added", "members_removed", "net_members_changed", "total_members")
TIMEFRAME_KEYS = ("last_12_months", "last_30_days", "last_365_days", "last_3_months", "last_7_days",
                  "last_90_days", "last_month", "last_week", "last_year", "this_month", "this_week", "this_year",
                  "today", "yesterday")
INTERVAL_LIMITS = {"hourly": timedelta(days=7), "daily": timedelta(days=60), "weekly": timedelta(days=366),
                   "monthly": timedelta(weeks=52)}
EARLIEST = datetime(2023, 6, 1, tzinfo=UTC)
MAX_IDS = 100
ATTRIBUTES = "/data/attributes"
FILTER_SPEC = {"segment_id": FilterField("string", single=frozenset({"equals"}), list=frozenset({"any", "equals"}))}


@dataclass(frozen=True)
class Timeframe:
    start: datetime  # aware, account time zone
    end: datetime


def zone_of(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _months_back(moment: datetime, months: int) -> datetime:
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28, 31, 30, 31, 30, 31,
                           31, 30, 31, 30, 31][month])
    return moment.replace(year=year, month=month + 1, day=day)


def resolve_timeframe(raw: Any, now: datetime, zone: ZoneInfo) -> Timeframe:
    pointer = f"{ATTRIBUTES}/timeframe"
    if not isinstance(raw, dict):
        raise errors.invalid("'timeframe' must be an object with a 'key', or 'start' and 'end'.", pointer=pointer)
    local_now = now.astimezone(zone)
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    if "key" in raw:
        if set(raw) != {"key"}:
            raise errors.invalid("A timeframe has either a 'key' or 'start' and 'end'.", pointer=pointer)
        key = raw["key"]
        if key not in TIMEFRAME_KEYS:
            raise errors.invalid(f"'{key}' is not a valid timeframe key; expected one of "
                                 f"{', '.join(TIMEFRAME_KEYS)}.", pointer=f"{pointer}/key")
        return _keyed(key, local_now, midnight)
    for name in ("start", "end"):
        if not isinstance(raw.get(name), str):
            raise errors.invalid(f"'{name}' is a required ISO 8601 datetime.", pointer=f"{pointer}/{name}")
    extra = set(raw) - {"start", "end"}
    if extra:
        name = sorted(extra)[0]
        raise errors.invalid(f"'{name}' is not a valid field here.", pointer=f"{pointer}/{name}")
    start, end = (_wall_clock(raw[name], zone, f"{pointer}/{name}") for name in ("start", "end"))
    if end <= start:
        raise errors.invalid("'end' must be after 'start'.", pointer=f"{pointer}/end")
    frame = Timeframe(start, end)
    check_length(frame, timedelta(days=366), "The timeframe cannot be longer than 1 year.")
    if start < EARLIEST:
        raise errors.invalid("Data is unavailable before 2023-06-01; use a timeframe after this date.",
                             pointer=f"{pointer}/start")
    return frame


def _wall_clock(text: str, zone: ZoneInfo, pointer: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.invalid(f"'{text}' is not a valid ISO 8601 datetime.", pointer=pointer) from None
    return parsed.replace(tzinfo=zone)


def _keyed(key: str, now: datetime, midnight: datetime) -> Timeframe:
    if key.startswith("last_") and key.endswith("_days"):
        return Timeframe(now - timedelta(days=int(key.split("_")[1])), now)
    if key in ("last_3_months", "last_12_months"):
        return Timeframe(_months_back(now, 3 if key == "last_3_months" else 12), now)
    week = midnight - timedelta(days=midnight.weekday())
    month = midnight.replace(day=1)
    year = month.replace(month=1)
    frames = {
        "today": Timeframe(midnight, now),
        "yesterday": Timeframe(midnight - timedelta(days=1), midnight),
        "this_week": Timeframe(week, now),
        "last_week": Timeframe(week - timedelta(days=7), week),
        "this_month": Timeframe(month, now),
        "last_month": Timeframe(_months_back(month, 1), month),
        "this_year": Timeframe(year, now),
        "last_year": Timeframe(year.replace(year=year.year - 1), year),
    }
    return frames[key]


def check_length(frame: Timeframe, limit: timedelta, detail: str) -> None:
    if frame.end - frame.start > limit:
        raise errors.invalid(detail, pointer=f"{ATTRIBUTES}/timeframe")


def check_statistics(raw: Any, allowed: Sequence[str] = STATISTICS) -> list[str]:
    """The requested statistics, each once, in order (segment reports' by default)."""
    pointer = f"{ATTRIBUTES}/statistics"
    if not isinstance(raw, list) or not raw:
        raise errors.invalid("'statistics' must be a non-empty list.", pointer=pointer)
    for index, item in enumerate(raw):
        if item not in allowed:
            raise errors.invalid(f"'{item}' is not a valid statistic; expected one of {', '.join(allowed)}.",
                                 pointer=f"{pointer}/{index}")
    return list(dict.fromkeys(raw))


def segment_ids_of(conn: Connection, account_id: str, text: Any) -> list[str]:
    """The segments the report covers: those the filter names (all must exist), else all of them."""
    pointer = f"{ATTRIBUTES}/filter"
    if text is None:
        return sorted(store.existing_segment_ids_all(conn, account_id))
    if not isinstance(text, str):
        raise errors.invalid("'filter' must be a string.", pointer=pointer)
    try:
        node = validate_filter(text, FILTER_SPEC)
    except ApiError as err:
        raise errors.invalid(err.detail, pointer=pointer) from None
    conditions = node.children if isinstance(node, BoolOp) and node.op == "and" else (node,)
    if node is None or len(conditions) != 1 or not isinstance(conditions[0], Condition) \
            or conditions[0].op not in ("equals", "any"):
        raise errors.invalid("The filter must be one equals or any condition on segment_id.", pointer=pointer)
    value = conditions[0].value
    ids = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
    if len(ids) > MAX_IDS:
        raise errors.invalid(f"At most {MAX_IDS} segment ids can be given.", pointer=pointer)
    ids = list(dict.fromkeys(ids))
    existing = store.existing_segment_ids(conn, account_id, ids)
    for sid in ids:
        if sid not in existing:
            err = errors.not_found(f"A segment with id '{sid}' does not exist.")
            err.pointer = pointer
            raise err
    return ids


def _statistics(wanted: Sequence[str], added: int, removed: int, total: int) -> dict[str, int]:
    values = {"members_added": added, "members_removed": removed, "net_members_changed": added - removed,
              "total_members": total}
    return {name: values[name] for name in wanted}


def values_report(conn: Connection, segment_ids: Sequence[str], statistics: Sequence[str],
                  frame: Timeframe) -> list[dict[str, Any]]:
    start, end = frame.start.astimezone(UTC), frame.end.astimezone(UTC)
    before = store.net_change_before(conn, segment_ids, start)
    counts = {sid: [0, 0] for sid in segment_ids}
    for sid, entered, _at in store.changes_between(conn, segment_ids, start, end):
        counts[sid][0 if entered else 1] += 1
    return [{"groupings": {"segment_id": sid},
             "statistics": _statistics(statistics, counts[sid][0], counts[sid][1],
                                       before[sid] + counts[sid][0] - counts[sid][1])} for sid in segment_ids]


def buckets(frame: Timeframe, interval: str) -> list[datetime]:
    """Bucket starts, in the account's time zone; each bucket ends where the next starts."""
    if interval not in INTERVAL_LIMITS:
        raise errors.invalid(f"'{interval}' is not a valid interval; expected one of "
                             f"{', '.join(sorted(INTERVAL_LIMITS))}.", pointer=f"{ATTRIBUTES}/interval")
    limit = INTERVAL_LIMITS[interval]
    check_length(frame, limit, f"A {interval} series can cover at most {limit.days} days.")
    starts, current = [], frame.start
    while current < frame.end:
        starts.append(current)
        if interval == "monthly":
            current = _months_back(current, -1)
        else:
            step = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(days=7)}[interval]
            naive = current.replace(tzinfo=None) + step  # wall-clock steps across DST changes
            current = naive.replace(tzinfo=current.tzinfo)
    return starts


def series_report(conn: Connection, segment_ids: Sequence[str], statistics: Sequence[str], frame: Timeframe,
                  starts: Sequence[datetime]) -> list[dict[str, Any]]:
    edges = [s.astimezone(UTC) for s in starts] + [frame.end.astimezone(UTC)]
    running = store.net_change_before(conn, segment_ids, edges[0])
    per: dict[str, list[list[int]]] = {sid: [[0, 0] for _ in starts] for sid in segment_ids}
    index = 0
    for sid, entered, at in store.changes_between(conn, segment_ids, edges[0], edges[-1]):
        while at >= edges[index + 1]:
            index += 1
        per[sid][index][0 if entered else 1] += 1
    results = []
    for sid in segment_ids:
        series: dict[str, list[int]] = {name: [] for name in statistics}
        total = running[sid]
        for added, removed in per[sid]:
            total += added - removed
            for name, value in _statistics(statistics, added, removed, total).items():
                series[name].append(value)
        results.append({"groupings": {"segment_id": sid}, "statistics": series})
    return results


def iso_times(starts: Sequence[datetime]) -> list[str]:
    return [s.isoformat() for s in starts]
