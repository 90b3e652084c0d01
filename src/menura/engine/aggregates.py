"""query_metric_aggregates compiled to one SQL GROUP BY.

A query names a metric, measurements (count, sum_value, unique), an interval (hour, day, week,
month) in a timezone, optional `by` dimensions (event properties; `$value_currency` is the event's
currency) and filters: a required time range on `datetime` plus conditions on dimensions.

Buckets are computed in the database, so `unique` (distinct profiles) stays exact per bucket:
- hour: whole hours since the first bucket, in real time;
- day and week: local calendar days, from the epoch shifted by the zone's UTC offset — the offset
  is piecewise constant, a CASE over the zone's transitions inside the range;
- month: a CASE over the month boundaries (at most 13 in the one-year range).
Naive datetimes in the filters are read in the query's timezone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, and_, case, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from menura.jsonapi.filters import (
    BoolOp,
    Condition,
    FilterField,
    Node,
    Not,
    compile_filter,
    validate_filter,
)
from menura.store import events as store
from menura.store.event_tables import events

MEASUREMENTS = ("count", "sum_value", "unique")
INTERVALS = ("hour", "day", "week", "month")
DIMENSIONS = (
    "$attributed_channel", "$attributed_flow", "$attributed_message", "$attributed_variation", "$campaign_channel",
    "$flow", "$flow_channel", "$message", "$message_send_cohort", "$usage_amount", "$value_currency", "$variation",
    "$variation_send_cohort", "Bot Click", "Bounce Type", "Campaign Name", "Client Canonical", "Client Name",
    "Client Type", "Email Domain", "Failure Source", "Failure Type", "From Number", "From Phone Region",
    "Inbox Provider", "List", "Message Format", "Message Name", "Message Type", "Method", "Segment Count", "Subject",
    "To Number", "To Phone Region", "URL", "form_id",
)
MAX_RANGE = timedelta(days=366)
DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 10_000
DIMENSION_OPS = frozenset({"equals", "contains", "starts-with", "ends-with"})
DIMENSION_LIST_OPS = frozenset({"any", "contains-any"})
_STEP = {"hour": 3600, "day": 86400, "week": 7 * 86400}


class AggregateError(ValueError):
    """A query that cannot run; `path` is the attribute at fault (JSON pointer under attributes)."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(detail)
        self.path = path
        self.detail = detail


@dataclass(frozen=True)
class AggregateQuery:
    metric_id: str
    measurements: tuple[str, ...]
    interval: str
    timezone: ZoneInfo
    start: datetime  # UTC, inclusive
    end: datetime  # UTC, exclusive
    by: tuple[str, ...] = ()
    filter_text: str | None = None  # rewritten filter (dimension aliases, UTC datetimes)
    sort: str | None = None
    descending: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    offset: int = 0


@dataclass
class AggregateResult:
    dates: list[str]
    rows: list[dict[str, Any]]
    has_more: bool = False
    buckets: list[datetime] = field(default_factory=list)


# --- parsing ---------------------------------------------------------------------------------------


def _alias(index: int) -> str:
    return f"dim_{index}"


_ALIASES = {name: _alias(n) for n, name in enumerate(DIMENSIONS)}
_BY_ALIAS = {alias: name for name, alias in _ALIASES.items()}
# Longest names first so "To Phone Region" is not read as a shorter name.
_DIMENSION_RE = re.compile(r"(\(\s*)(" + "|".join(re.escape(n) for n in sorted(DIMENSIONS, key=len, reverse=True))
                           + r")(\s*[,)])")
_TOKEN_RE = re.compile(
    r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\""
    r"|(?<![\w.:+-])(\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)(?![\d:+\-Zz.Tt])")


def _rewrite(text: str, tz: ZoneInfo) -> str:
    """Dimension names to parser-safe aliases; naive datetimes to UTC instants in `tz`."""
    def localize(match: re.Match[str]) -> str:
        token = match.group(1)
        if token is None:
            return match.group(0)
        try:
            naive = datetime.fromisoformat(token.replace("t", "T"))
        except ValueError:
            return token
        return naive.replace(tzinfo=tz).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    text = _TOKEN_RE.sub(localize, text)
    return _DIMENSION_RE.sub(lambda m: m.group(1) + _ALIASES[m.group(2)] + m.group(3), text)


def _filter_spec(conn: Connection | None) -> dict[str, FilterField]:
    spec: dict[str, FilterField] = {
        "datetime": FilterField("datetime", frozenset({"greater-than", "greater-or-equal", "less-than",
                                                       "less-or-equal"}), column=events.c.occurred_at),
    }
    for name, alias in _ALIASES.items():
        spec[alias] = FilterField("string", DIMENSION_OPS, DIMENSION_LIST_OPS,
                                  column=_dimension_condition(conn, name) if conn is not None else events.c.id)
    return spec


def _dimension_condition(conn: Connection, name: str) -> Any:
    def build(op: str, value: Any) -> ColumnElement[bool]:
        column = dimension_text(conn, name)
        if op in ("any", "contains-any"):
            if op == "any":
                return column.in_(list(value))
            return or_(*(column.contains(v, autoescape=True) for v in value))
        return {"equals": lambda: column == value,
                "contains": lambda: column.contains(value, autoescape=True),
                "starts-with": lambda: column.startswith(value, autoescape=True),
                "ends-with": lambda: column.endswith(value, autoescape=True)}[op]()
    return build


def dimension_text(conn: Connection, name: str) -> ColumnElement[Any]:
    """The dimension's scalar text for filtering (strings unquoted)."""
    if name == "$value_currency":
        return func.coalesce(events.c.value_currency, store.property_value(conn, name))
    return store.property_value(conn, name)


def _dimension_group(conn: Connection, name: str) -> ColumnElement[Any]:
    """The dimension as JSON text, the same representation on both databases."""
    if name == "$value_currency":
        return func.coalesce(store.json_text_of(conn, events.c.value_currency), store.property_json_text(conn, name))
    return store.property_json_text(conn, name)


def _time_bounds(node: Node | None) -> tuple[datetime | None, datetime | None]:
    """The range the top-level conjunction puts on `datetime`: (inclusive start, exclusive end)."""
    start = end = None
    if node is None:
        return None, None
    parts: list[Node] = list(node.children) if isinstance(node, BoolOp) and node.op == "and" else [node]
    for part in parts:
        if not isinstance(part, Condition) or part.field != "datetime":
            if _mentions_datetime(part):
                raise AggregateError("filter", "datetime may only be filtered at the top level of the filter.")
            continue
        value = part.value
        assert isinstance(value, datetime)
        if part.op in ("greater-or-equal", "greater-than"):
            lower = value + timedelta(microseconds=1) if part.op == "greater-than" else value
            start = lower if start is None else max(start, lower)
        else:
            upper = value + timedelta(microseconds=1) if part.op == "less-or-equal" else value
            end = upper if end is None else min(end, upper)
    return start, end


def _mentions_datetime(node: Node) -> bool:
    if isinstance(node, Condition):
        return node.field == "datetime"
    if isinstance(node, Not):
        return _mentions_datetime(node.child)
    return any(_mentions_datetime(child) for child in node.children)


def build_query(*, metric_id: str, measurements: Sequence[str], interval: str | None, by: Sequence[str] | None,
                filters: Sequence[str], timezone: str | None, sort: str | None, page_size: int | None,
                offset: int = 0) -> AggregateQuery:
    if not measurements:
        raise AggregateError("measurements", "At least one measurement is required.")
    for m in measurements:
        if m not in MEASUREMENTS:
            raise AggregateError("measurements", f"'{m}' is not a measurement ({', '.join(MEASUREMENTS)}).")
    interval = interval or "day"
    if interval not in INTERVALS:
        raise AggregateError("interval", f"'{interval}' is not an interval ({', '.join(INTERVALS)}).")
    try:
        tz = ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise AggregateError("timezone", f"'{timezone}' is not a known timezone.") from None
    dims = tuple(dict.fromkeys(by or ()))
    for dim in dims:
        if dim not in DIMENSIONS:
            raise AggregateError("by", f"'{dim}' is not a supported dimension.")
    if not filters:
        raise AggregateError("filter", "The filter must include a time range on datetime.")
    text = ",".join(f"and({_rewrite(f, tz)})" for f in filters)
    try:
        node = validate_filter(text, _filter_spec(None))
    except Exception as exc:  # ApiError with the parser's message
        detail = getattr(exc, "detail", str(exc))
        for alias, name in _BY_ALIAS.items():
            detail = detail.replace(f"'{alias}'", f"'{name}'")
        raise AggregateError("filter", detail) from None
    start, end = _time_bounds(_flatten(node))
    if start is None or end is None:
        raise AggregateError("filter", "The filter must include a time range: greater-or-equal and less-than "
                                       "conditions on datetime.")
    if end <= start:
        raise AggregateError("filter", "The time range is empty: its end is not after its start.")
    if end - start > MAX_RANGE:
        raise AggregateError("filter", "The time range may span at most one year.")
    descending = False
    sort_key = None
    if sort:
        descending = sort.startswith("-")
        sort_key = sort.lstrip("-")
        if sort_key not in MEASUREMENTS and sort_key not in dims:
            raise AggregateError("sort", f"'{sort}' is not a valid sort: sort by a measurement or a `by` dimension.")
        if sort_key in MEASUREMENTS and sort_key not in measurements:
            raise AggregateError("sort", f"'{sort_key}' is not one of the requested measurements.")
    size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise AggregateError("page_size", f"page_size must be between 1 and {MAX_PAGE_SIZE}.")
    return AggregateQuery(metric_id=metric_id, measurements=tuple(dict.fromkeys(measurements)), interval=interval,
                          timezone=tz, start=start, end=end, by=dims, filter_text=text, sort=sort_key,
                          descending=descending, page_size=size, offset=offset)


def _flatten(node: Node | None) -> Node | None:
    """Merge nested top-level and(...) groups into one conjunction."""
    if node is None:
        return None
    if isinstance(node, BoolOp) and node.op == "and":
        parts: list[Node] = []
        for child in node.children:
            flat = _flatten(child)
            if isinstance(flat, BoolOp) and flat.op == "and":
                parts.extend(flat.children)
            elif flat is not None:
                parts.append(flat)
        return BoolOp("and", tuple(parts))
    return node


# --- buckets ----------------------------------------------------------------------------------------


def bucket_starts(query: AggregateQuery) -> list[datetime]:
    """Start of every interval bucket touching [start, end), as aware datetimes in the query's zone."""
    tz = query.timezone
    local = query.start.astimezone(tz)
    if query.interval == "hour":
        # Zones with a non-whole-hour offset start their hours at the local hour.
        first = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        out, at = [], first
        while at < query.end:
            out.append(at.astimezone(tz))
            at += timedelta(hours=1)
        return out
    day = local.date()
    if query.interval == "week":
        day -= timedelta(days=day.weekday())
    elif query.interval == "month":
        day = day.replace(day=1)
    out = []
    while True:
        start = datetime(day.year, day.month, day.day, tzinfo=tz)
        if start.astimezone(UTC) >= query.end:
            break
        out.append(start)
        day = _next_day(day, query.interval)
    return out


def _next_day(day: date, interval: str) -> date:
    if interval == "day":
        return day + timedelta(days=1)
    if interval == "week":
        return day + timedelta(days=7)
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _epoch(when: datetime) -> int:
    return int(when.timestamp())


def _offset_changes(tz: ZoneInfo, start: datetime, end: datetime) -> list[tuple[int, int]]:
    """[(epoch from which it applies, UTC offset seconds)] inside [start, end), first from `start`."""
    def offset(epoch: int) -> int:
        value = datetime.fromtimestamp(epoch, tz).utcoffset()
        return int(value.total_seconds()) if value is not None else 0

    lo, hi = _epoch(start) - 86400, _epoch(end) + 86400
    changes = [(lo, offset(lo))]
    at = lo
    while at < hi:
        nxt = min(at + 3600, hi)
        if offset(nxt) != offset(at):
            a, b = at, nxt  # offset(a) is the old one, offset(b) the new one
            while b - a > 1:
                mid = (a + b) // 2
                if offset(mid) == offset(at):
                    a = mid
                else:
                    b = mid
            changes.append((b, offset(b)))
        at = nxt
    return changes


def bucket_index(conn: Connection, query: AggregateQuery, starts: Sequence[datetime]) -> ColumnElement[Any]:
    epoch = store.epoch_seconds(conn, events.c.occurred_at)
    if query.interval == "month":
        whens = [(epoch < _epoch(b), n) for n, b in enumerate(starts[1:])]
        return case(*whens, else_=len(starts) - 1) if whens else literal(0)
    if query.interval == "hour":
        return (epoch - _epoch(starts[0])) // _STEP["hour"]
    changes = _offset_changes(query.timezone, query.start, query.end)
    if len(changes) == 1:
        local = epoch + changes[0][1]
    else:
        whens = [(epoch < changes[n + 1][0], changes[n][1]) for n in range(len(changes) - 1)]
        local = epoch + case(*whens, else_=changes[-1][1])
    first = starts[0]
    first_local = _epoch(first.replace(tzinfo=UTC))  # local wall time read as if it were UTC
    return (local - first_local) // _STEP[query.interval]


# --- running ------------------------------------------------------------------------------------------


def run(conn: Connection, account_id: str, query: AggregateQuery) -> AggregateResult:
    starts = bucket_starts(query)
    bucket = bucket_index(conn, query, starts).label("bucket")
    dims = [_dimension_group(conn, name).label(f"d{n}") for n, name in enumerate(query.by)]
    measures = [func.count().label("count"), func.sum(events.c.value).label("sum_value"),
                func.count(events.c.profile_id.distinct()).label("unique")]
    condition = compile_filter(query.filter_text, _filter_spec(conn))
    where = and_(events.c.metric_id == query.metric_id, events.c.account_id == account_id,
                 events.c.occurred_at >= query.start, events.c.occurred_at < query.end)
    if condition is not None:
        where = and_(where, condition)
    stmt = select(bucket, *dims, *measures).where(where).group_by(bucket, *dims)
    series: dict[tuple[str, ...], dict[str, list[float]]] = {}
    width = len(starts)
    for row in conn.execute(stmt):
        key = tuple(_dimension_value(getattr(row, f"d{n}")) for n in range(len(query.by)))
        values = series.get(key)
        if values is None:
            values = series[key] = {m: [0.0] * width for m in query.measurements}
        index = int(row.bucket)
        if not 0 <= index < width:
            continue
        for m in query.measurements:
            values[m][index] += float(getattr(row, m) or 0)
    if not query.by and not series:
        series[()] = {m: [0.0] * width for m in query.measurements}
    keys = _ordered(series, query)
    page = keys[query.offset:query.offset + query.page_size]
    rows = [{"dimensions": list(key), "measurements": series[key]} for key in page]
    return AggregateResult(dates=[s.isoformat() for s in starts], rows=rows,
                           has_more=query.offset + query.page_size < len(keys), buckets=starts)


def _dimension_value(raw: Any) -> str:
    if raw is None:
        return ""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return str(raw)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def _ordered(series: dict[tuple[str, ...], dict[str, list[float]]], query: AggregateQuery) -> list[tuple[str, ...]]:
    keys = sorted(series)
    if query.sort is None:
        return keys
    if query.sort in MEASUREMENTS:
        return sorted(keys, key=lambda k: sum(series[k][query.sort or ""]), reverse=query.descending)
    position = query.by.index(query.sort)
    return sorted(keys, key=lambda k: k[position], reverse=query.descending)
