"""Events: the internal write path (`record_event`, `record_events`), the rules an accepted event
must satisfy, and how a stored event reads back.

`record_event` is what other areas call inside their own transactions (list subscriptions,
message deliveries, flows). The API's create/bulk endpoints stage events first and the ingest
worker ends up here too, in batches (`record_events`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import Connection
from ulid import ULID

from menura import ids
from menura.domain import metrics as metric_rules
from menura.domain import profiles
from menura.store import events as store
from menura.store import profiles as profile_store

MAX_PROPERTIES = 400
MAX_STRING_BYTES = 100 * 1024
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=365)
UNIQUE_ID_MAX = 255
CURRENCY_MAX = 16

# Called after events are recorded, inside the recording transaction, with
# (conn, account_id, profile_id, metric_id): segments and flows subscribe to "new event for
# profile X". A batch calls each hook once per distinct (profile, metric) it recorded.
EventHook = Callable[[Connection, str, str, str], None]
EVENT_HOOKS: list[EventHook] = []
# Called once per recorded event that may trigger flows (not backfilled), in the recording
# transaction, with (conn, account_id, event_id, profile_id, metric_id).
TriggerHook = Callable[[Connection, str, str, str, str], None]
TRIGGER_HOOKS: list[TriggerHook] = []


class EventRuleError(ValueError):
    """An event that breaks one of Klaviyo's rules; `field` names the attribute at fault."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs ~1 us more per event
class NewEvent:
    profile_id: str
    metric_name: str
    properties: Mapping[str, Any]
    time: datetime
    value: float | None = None
    value_currency: str | None = None
    unique_id: str | None = None
    service: str = metric_rules.INTERNAL_SERVICE
    backfill: bool = False  # recorded, but triggers no flow


# --- rules ---------------------------------------------------------------------------------------


def parse_time(raw: str | None, received: datetime) -> datetime:
    """An event's time: the receipt time by default, truncated to the second, after 1990 and at
    most a year ahead. Naive times are UTC."""
    if raw is None:
        when = received
    else:
        try:
            when = datetime.fromisoformat(raw.strip())
        except ValueError:
            raise EventRuleError("time", f"'{raw}' is not a valid ISO 8601 datetime.") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC).replace(microsecond=0)
    if when < EARLIEST:
        raise EventRuleError("time", "The event time must be after the year 1990.")
    if when > received + MAX_FUTURE:
        raise EventRuleError("time", "The event time can be at most 1 year in the future.")
    return when


def check_metric_name(name: str) -> str:
    stripped = name.strip()
    if not stripped:
        raise EventRuleError("name", "The metric name must not be empty.")
    if len(stripped) > metric_rules.NAME_MAX:
        raise EventRuleError("name", "The metric name must be less than 128 characters.")
    return stripped


def check_properties(properties: Mapping[str, Any]) -> None:
    if len(properties) > MAX_PROPERTIES:
        raise EventRuleError("properties", f"An event can have at most {MAX_PROPERTIES} properties.")
    # No string can exceed the limit if the whole encoded object does not: the common case costs
    # one fast encode instead of a walk over every value.
    if len(_encode(properties)) > MAX_STRING_BYTES:
        _check_strings(properties)


_encode = msgspec.json.Encoder().encode


def _check_strings(value: Any) -> None:
    if isinstance(value, str):
        # Cheap length test first; only long strings are measured in bytes.
        if len(value) * 4 > MAX_STRING_BYTES and len(value.encode()) > MAX_STRING_BYTES:
            raise EventRuleError("properties", "A single string cannot be larger than 100KB.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)
    elif isinstance(value, float) and not math.isfinite(value):
        raise EventRuleError("properties", "Property values must be finite numbers.")


def check_value(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise EventRuleError("value", "The value must be a finite number.")
    return value


def check_unique_id(unique_id: str | None) -> str | None:
    if unique_id is not None and len(unique_id) > UNIQUE_ID_MAX:
        raise EventRuleError("unique_id", f"unique_id must be at most {UNIQUE_ID_MAX} characters.")
    return unique_id


def check_currency(currency: str | None) -> str | None:
    if currency is not None and len(currency) > CURRENCY_MAX:
        raise EventRuleError("value_currency", "value_currency must be an ISO 4217 currency code.")
    return currency


def default_unique_id(when: datetime) -> str:
    """Klaviyo's default unique_id is the event time to the second: without a unique_id, one event
    per profile and metric per second is recorded."""
    return str(int(when.timestamp()))


def value_of(value: float | None, properties: Mapping[str, Any]) -> float | None:
    """The event value; Klaviyo's older `$value` property counts when no value attribute is given."""
    if value is not None:
        return value
    legacy = properties.get("$value")
    if isinstance(legacy, int | float) and not isinstance(legacy, bool) and math.isfinite(legacy):
        return float(legacy)
    return None


# --- recording -----------------------------------------------------------------------------------


def record_event(conn: Connection, *, account_id: str, profile_id: str, metric_name: str,
                 properties: dict[str, Any], time: datetime, now: datetime, value: float | None = None,
                 value_currency: str | None = None, unique_id: str | None = None,
                 service: str = metric_rules.INTERNAL_SERVICE) -> str:
    """Record one event in the caller's transaction; returns its id. The metric is found or created
    by name (and integration, `service`). With a `unique_id` already recorded for this profile and
    metric, nothing is written and the existing event's id is returned."""
    new = NewEvent(profile_id, metric_name, properties, time, value, value_currency, unique_id, service)
    event_id = record_events(conn, account_id, [new], now)[0]
    if event_id is not None:
        return event_id
    metric_id = metric_rules.ensure_metric(conn, account_id, metric_name, service, now)
    existing = store.find_event_ids_by_unique_id(conn, profile_id, metric_id, unique_id or "")
    assert existing is not None
    return existing


def record_events(conn: Connection, account_id: str, batch: Sequence[NewEvent], now: datetime, *,
                  new_profiles: Collection[str] = frozenset()) -> list[str | None]:
    """Record a batch of one account's events; per event, its new id or None when de-duplicated.
    `new_profiles`: profiles created in this transaction, which have no recorded events yet."""
    if not batch:
        return []
    metric_ids = metric_rules.ensure_metrics(conn, account_id, {(e.metric_name, e.service) for e in batch}, now)
    rows: list[dict[str, Any]] = []
    for item, event_id in zip(batch, ids.ulids(len(batch)), strict=True):
        rows.append({
            "id": event_id,
            "account_id": account_id,
            "metric_id": metric_ids[(item.metric_name, item.service)],
            "profile_id": item.profile_id,
            "occurred_at": item.time,
            # Serialized by the insert; a copy only when it is not a plain dict already.
            "properties": item.properties if type(item.properties) is dict else dict(item.properties),
            "value": value_of(item.value, item.properties),
            "value_currency": item.value_currency,
            "unique_id": item.unique_id,
            "received_at": now,
        })
    inserted = store.insert_events(conn, rows, new_profiles=new_profiles)
    recorded = [row for row in rows if row["id"] in inserted]
    if recorded:
        metric_rules.discover_properties(conn, account_id,
                                         ((row["metric_id"], row["properties"]) for row in recorded), now)
        _after_recording(conn, account_id, recorded)
        if TRIGGER_HOOKS:
            for item, row in zip(batch, rows, strict=True):
                if not item.backfill and row["id"] in inserted:
                    for trigger in TRIGGER_HOOKS:
                        trigger(conn, account_id, row["id"], row["profile_id"], row["metric_id"])
    return [row["id"] if row["id"] in inserted else None for row in rows]


def _after_recording(conn: Connection, account_id: str, recorded: Sequence[dict[str, Any]]) -> None:
    latest: dict[str, datetime] = {}
    pairs: dict[tuple[str, str], None] = {}
    for row in recorded:
        profile_id = row["profile_id"]
        if profile_id not in latest or row["occurred_at"] > latest[profile_id]:
            latest[profile_id] = row["occurred_at"]
        pairs[(profile_id, row["metric_id"])] = None
    store.touch_last_events(conn, account_id, latest)
    for profile_id, metric_id in pairs:
        for hook in EVENT_HOOKS:
            hook(conn, account_id, profile_id, metric_id)


# --- reading -------------------------------------------------------------------------------------


def event_uuid(event_id: str) -> str:
    """Klaviyo's event `uuid`: the same 128 bits as the id, in UUID form."""
    try:
        return str(ULID.from_str(event_id).to_uuid())
    except ValueError:
        return event_id


def event_properties(row: Any) -> dict[str, Any]:
    """The stored properties plus the `$`-fields Klaviyo shows with them."""
    props = dict(row.properties or {})
    if row.unique_id is not None:
        props.setdefault("$event_id", row.unique_id)
    if row.value is not None:
        props["$value"] = row.value
    if row.value_currency is not None:
        props.setdefault("$value_currency", row.value_currency)
    return props


def event_attributes(row: Any) -> dict[str, Any]:
    when: datetime = row.occurred_at
    return {"timestamp": int(when.timestamp()), "event_properties": event_properties(row),
            "datetime": when.isoformat(), "uuid": event_uuid(row.id)}


def profiles_of(conn: Connection, account_id: str, profile_ids: Sequence[str]) -> list[Any]:
    """The profiles events point at, in the order asked (deleted ones are left out)."""
    rows = {row.id: row for row in profile_store.profiles_by_ids(conn, account_id, profile_ids)}
    return [rows[pid] for pid in profile_ids if pid in rows]


# --- profile lifecycle hooks -----------------------------------------------------------------------


def delete_profile_events(conn: Connection, account_id: str, profile_id: str) -> None:
    """A data privacy deletion removes the profile's events."""
    store.delete_profile_events(conn, account_id, profile_id)


def move_profile_events(conn: Connection, account_id: str, survivor_id: str, merged_ids: Sequence[str]) -> None:
    """A merge moves the merged profiles' events to the surviving profile."""
    for merged_id in merged_ids:
        store.move_profile_events(conn, account_id, merged_id, survivor_id)


if delete_profile_events not in profiles.PROFILE_DELETE_HOOKS:
    profiles.PROFILE_DELETE_HOOKS.append(delete_profile_events)
if move_profile_events not in profiles.PROFILE_MERGE_HOOKS:
    profiles.PROFILE_MERGE_HOOKS.append(move_profile_events)
