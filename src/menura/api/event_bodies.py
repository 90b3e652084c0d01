"""Request bodies of the event-creating endpoints (server and client side), and their conversion to
validated intake entries. Every rule violation becomes a 400 whose pointer names the culprit."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

import msgspec

from menura.domain import event_intake, profiles
from menura.domain import events as rules
from menura.domain import metrics as metric_rules
from menura.domain.event_intake import IntakeEntry, IntakeEvent
from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError

IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id", "_kx")


class MetricAttributes(msgspec.Struct):
    name: str
    service: str | None = None


class MetricData(msgspec.Struct):
    type: Literal["metric"]
    attributes: MetricAttributes


class MetricRelation(msgspec.Struct):
    data: MetricData


class ProfileData(msgspec.Struct):
    type: Literal["profile"]
    attributes: dict[str, Any] = {}
    id: str | None = None
    meta: dict[str, Any] | None = None


class ProfileRelation(msgspec.Struct):
    data: ProfileData


class EventAttributes(msgspec.Struct):
    properties: dict[str, Any]
    metric: MetricRelation
    profile: ProfileRelation
    time: str | None = None
    value: float | None = None
    value_currency: str | None = None
    unique_id: str | None = None
    backfill: bool | None = None


class EventData(msgspec.Struct):
    type: Literal["event"]
    attributes: EventAttributes


class EventCreate(msgspec.Struct):
    data: EventData


class BulkEventAttributes(msgspec.Struct):
    properties: dict[str, Any]
    metric: MetricRelation
    time: str | None = None
    value: float | None = None
    value_currency: str | None = None
    unique_id: str | None = None
    backfill: bool | None = None


class BulkEventData(msgspec.Struct):
    type: Literal["event"]
    attributes: BulkEventAttributes


class BulkEvents(msgspec.Struct):
    data: list[BulkEventData]


class ProfileEventsAttributes(msgspec.Struct):
    profile: ProfileRelation
    events: BulkEvents
    backfill: bool | None = None


class ProfileEventsData(msgspec.Struct):
    type: Literal["event-bulk-create"]
    attributes: ProfileEventsAttributes


class ProfileEventsList(msgspec.Struct):
    data: list[ProfileEventsData]


class BulkJobAttributes(msgspec.Struct, rename={"events_bulk_create": "events-bulk-create"}):
    events_bulk_create: ProfileEventsList


class BulkJobData(msgspec.Struct):
    type: Literal["event-bulk-create-job"]
    attributes: BulkJobAttributes


class BulkJobCreate(msgspec.Struct):
    data: BulkJobData


class ClientBulkCreate(msgspec.Struct):
    """`/client/event-bulk-create`: one profile and its events."""

    data: ProfileEventsData


# --- conversion ------------------------------------------------------------------------------------


def _rule_error(exc: rules.EventRuleError, base: str) -> ApiError:
    where = {"name": "/metric/data/attributes/name"}.get(exc.field, "/" + exc.field)
    return errors.invalid(exc.detail, pointer=base + where)


# Profiles that passed validation recently (validation is a pure function of the input, and the
# same shoppers send many events): repeated ones skip the email/phone parsers.
_valid_profiles: OrderedDict[bytes, tuple[dict[str, Any], bool]] = OrderedDict()
_VALID_PROFILES_MAX = 20_000
_SINGLE_IDENTIFIERS = ("email", "phone_number", "external_id", "anonymous_id")


def check_profile(profile: ProfileData, pointer: str) -> tuple[dict[str, Any], bool]:
    """At least one identifier (or a profile id), each well-formed, as the profiles area validates.
    Returns the attributes to stage, and whether they are already normalized: a profile given by
    one identifier alone is staged as its normalized form, so the ingest worker need not parse it
    again."""
    attrs = profile.attributes
    if not any(attrs.get(name) not in (None, "") for name in IDENTIFIERS) and not profile.id:
        raise errors.invalid("The profile must include at least one identifier: id, email, phone_number, "
                             "external_id, anonymous_id or _kx.", pointer=pointer + "/attributes")
    key = _encoder.encode((attrs, profile.meta, profile.id))
    known = _valid_profiles.get(key)
    if known is not None:
        return known
    data = profiles.profile_input_from_attributes(dict(attrs), pointer + "/attributes", meta=profile.meta,
                                                  meta_pointer=pointer + "/meta", profile_id=profile.id)
    staged: tuple[dict[str, Any], bool] = (attrs, False)
    if profile.id is None and profile.meta is None and len(attrs) == 1:
        (name,) = attrs
        value = getattr(data, name, None) if name in _SINGLE_IDENTIFIERS else None
        if isinstance(value, str):
            staged = ({name: value}, True)
    _valid_profiles[key] = staged
    if len(_valid_profiles) > _VALID_PROFILES_MAX:
        _valid_profiles.popitem(last=False)
    return staged


_encoder = msgspec.msgpack.Encoder()


def intake_event(attrs: EventAttributes | BulkEventAttributes, base: str, received: datetime,
                 backfill: bool = False) -> IntakeEvent:
    try:
        name = rules.check_metric_name(attrs.metric.data.attributes.name)
        rules.check_properties(attrs.properties)
        when = rules.parse_time(attrs.time, received)
        value = rules.check_value(attrs.value)
        currency = rules.check_currency(attrs.value_currency)
        unique_id = rules.check_unique_id(attrs.unique_id)
    except rules.EventRuleError as exc:
        raise _rule_error(exc, base) from None
    service = attrs.metric.data.attributes.service or metric_rules.API_SERVICE
    return IntakeEvent(
        metric=name, service=service.strip().lower() or metric_rules.API_SERVICE,
        properties=attrs.properties, time=int(when.timestamp()), value=value, currency=currency,
        unique_id=unique_id if unique_id is not None else rules.default_unique_id(when),
        backfill=bool(attrs.backfill) or backfill)


def single_entry(body: EventCreate, received: datetime, *, client: bool = False) -> IntakeEntry:
    attrs = body.data.attributes
    base = "/data/attributes"
    profile = attrs.profile.data
    staged, normalized = check_profile(profile, base + "/profile/data")
    event = intake_event(attrs, base, received)
    return IntakeEntry(index=0, profile_id=profile.id, profile=staged, events=[event],
                       meta=profile.meta, client=client, normalized=normalized)


def profile_events_entry(item: ProfileEventsData, index: int, base: str, received: datetime, *,
                         client: bool = False) -> IntakeEntry:
    attrs = item.attributes
    profile = attrs.profile.data
    staged, normalized = check_profile(profile, base + "/attributes/profile/data")
    if not attrs.events.data:
        raise errors.invalid("At least one event is required.", pointer=base + "/attributes/events/data")
    events = [intake_event(ev.attributes, f"{base}/attributes/events/data/{n}/attributes", received,
                           bool(attrs.backfill))
              for n, ev in enumerate(attrs.events.data)]
    return IntakeEntry(index=index, profile_id=profile.id, profile=staged, events=events,
                       meta=profile.meta, client=client, normalized=normalized)


def bulk_entries(items: list[ProfileEventsData], base: str, received: datetime, *,
                 client: bool = False, single: bool = False) -> list[IntakeEntry]:
    """Entries of a bulk request; with `single` the one item sits at `base` itself (client bulk)."""
    total = sum(len(item.attributes.events.data) for item in items)
    if total == 0:
        raise errors.invalid("At least one event is required.", pointer=base)
    if total > event_intake.MAX_BULK_EVENTS:
        raise errors.invalid(f"A request can create at most {event_intake.MAX_BULK_EVENTS} events; "
                             f"it has {total}.", pointer=base)
    where = (lambda n: base) if single else (lambda n: f"{base}/{n}")
    entries = [profile_events_entry(item, n, where(n), received, client=client) for n, item in enumerate(items)]
    _check_repeated_unique_ids(items, entries, where)
    return entries


def _check_repeated_unique_ids(items: list[ProfileEventsData], entries: list[IntakeEntry],
                               where: Callable[[int], str]) -> None:
    """A unique_id repeated for the same profile and metric fails the whole bulk request."""
    seen: set[tuple[str, str, str, str]] = set()
    for n, (item, entry) in enumerate(zip(items, entries, strict=True)):
        who = entry.profile_id or msgspec.json.encode(
            {k: entry.profile.get(k) for k in IDENTIFIERS if entry.profile.get(k)}).decode()
        for m, (raw, event) in enumerate(zip(item.attributes.events.data, entry.events, strict=True)):
            if raw.attributes.unique_id is None:
                continue
            key = (who, event.metric, event.service, event.unique_id)
            if key in seen:
                raise errors.invalid(f"unique_id '{event.unique_id}' is repeated for the same profile and metric.",
                                     pointer=f"{where(n)}/attributes/events/data/{m}/attributes/unique_id")
            seen.add(key)
