"""Segment definitions: the spec's `SegmentDefinition` / `ConditionGroup` schemas parsed into
typed conditions, with a 400 pointing at the first culprit.

Semantics shared by the SQL compiler and the Python evaluator (engine/segments), checked against
Klaviyo's documentation:
- condition groups are ANDed, the conditions inside one group are ORed (Segments API overview);
- at most 100 conditions per segment (help center, "Segment conditions reference");
- a property that is not set (missing or null) fails every value filter, positive or negative;
  only existence filters see it ("Understanding changes to how segment conditions evaluate null
  or empty values": unset properties are excluded from text and boolean conditions);
- dates are evaluated in UTC (same article).
Every other choice the spec leaves open is written next to the code that makes it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers

from menura.jsonapi import errors
from menura.jsonapi.errors import ApiError

MAX_CONDITIONS = 100
UNIT_SECONDS = {"hour": 3600, "day": 86400, "week": 604800}
# Profile fields every profile has, by their API names, and the kind of value they hold.
STANDARD_FIELDS = {
    "email": "string", "phone_number": "phone", "external_id": "string", "anonymous_id": "string",
    "first_name": "string", "last_name": "string", "organization": "string", "locale": "string",
    "title": "string", "image": "string", "created": "datetime", "updated": "datetime",
    "last_event_date": "datetime",
}
LOCATION_FIELDS = ("address1", "address2", "city", "country", "latitude", "longitude", "region", "zip",
                   "timezone", "ip")
# Filters each kind of standard field accepts (custom and location properties accept any).
FILTERS_FOR_FIELD_KIND = {
    "string": frozenset({"string", "string_array", "existence"}),
    "phone": frozenset({"string", "string_array", "phone", "existence"}),
    "datetime": frozenset({"date_static", "date_static_range", "date_relative", "date_anniversary_relative",
                           "date_range", "date_calendar", "date_anniversary", "existence"}),
}
COMPLETION_WINDOWS = {"HOURS_1": 3600, "DAYS_1": 86400, "DAYS_3": 3 * 86400, "DAYS_5": 5 * 86400,
                      "WEEKS_1": 7 * 86400, "DAYS_30": 30 * 86400, "DAYS_90": 90 * 86400,
                      "DAYS_180": 180 * 86400, "YEARS_1": 365 * 86400}
RELATIVE_DATE_OPERATORS = frozenset({"at-least", "in-the-last", "in-the-next", "between", "anniversary-last",
                                     "anniversary-next", "anniversary", "anniversary-month"})


# --------------------------------------------------------------------------- filters


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


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class PropertyRef:
    """`source` is "column" (a profile column), "location" or "custom" (JSON keys)."""

    source: str
    name: str
    kind: str  # string | phone | datetime | any


@dataclass(frozen=True)
class PropertyCondition:
    prop: PropertyRef
    filter: Filter


@dataclass(frozen=True)
class EventPropertyFilter:
    name: str
    filter: ValueFilter | None  # None: no filter on this property (the spec allows null)


@dataclass(frozen=True)
class MetricCondition:
    metric_id: str
    measurement: str  # count | sum
    operator: str
    value: float
    timeframe: DateFilter
    filters: tuple[EventPropertyFilter, ...] = ()


@dataclass(frozen=True)
class FunnelStep:
    exists: bool
    metric_id: str
    filters: tuple[EventPropertyFilter, ...] = ()


@dataclass(frozen=True)
class FunnelCondition:
    timeframe: DateFilter
    window_seconds: int | None
    steps: tuple[FunnelStep, ...]


@dataclass(frozen=True)
class ConsentFilter:
    """`field`: status_date | is_double_opt_in | custom_source | method | bounce_date |
    manual_suppression_date | invalid_email_date | is_rcs_capable."""

    field: str
    method: str | None = None
    filter: Filter | None = None


@dataclass(frozen=True)
class ConsentCondition:
    channel: str  # email | sms | push
    can_receive: bool
    subscription: str  # any | subscribed | unsubscribed | never_subscribed
    filters: tuple[ConsentFilter, ...] = ()


@dataclass(frozen=True)
class MembershipCondition:
    is_member: bool
    group_ids: tuple[str, ...]
    timeframe: DateFilter | None = None


@dataclass(frozen=True)
class RegionCondition:
    in_region: bool
    region: str  # european_union | united_states


@dataclass(frozen=True)
class PostalDistanceCondition:
    country_code: str
    postal_code: str
    unit: str  # kilometers | miles
    operator: str  # greater-than | less-than
    value: float


@dataclass(frozen=True)
class ConstantCondition:
    """A condition whose data does not exist here (predictive analytics before any model ran,
    custom objects, WhatsApp permissions): it matches everyone or no one, said once, here."""

    matches: bool
    reason: str


@dataclass(frozen=True)
class SampleCondition:
    """A random sample of `percentage` percent, stable per profile (flows' `profile-sample`)."""

    percentage: int
    seed: str = ""


Condition = (PropertyCondition | MetricCondition | FunnelCondition | ConsentCondition | MembershipCondition
             | RegionCondition | PostalDistanceCondition | ConstantCondition | SampleCondition)


@dataclass(frozen=True)
class Definition:
    groups: tuple[tuple[Condition, ...], ...]

    def conditions(self) -> list[Condition]:
        return [c for group in self.groups for c in group]


# --------------------------------------------------------------------------- parsing helpers


def _bad(detail: str, pointer: str) -> ApiError:
    return errors.invalid(detail, pointer=pointer)


def _object(value: Any, pointer: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad("Expected an object.", pointer)
    for key in value:
        if key not in required and key not in optional:
            raise _bad(f"'{key}' is not a valid field here.", f"{pointer}/{key}")
    for key in required:
        if key not in value or value[key] is None:
            raise _bad(f"'{key}' is a required field.", f"{pointer}/{key}")
    return value


def _enum(value: Any, allowed: tuple[str, ...] | frozenset[str], pointer: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        options = ", ".join(f"'{a}'" for a in sorted(allowed))
        raise _bad(f"{_show(value)} is not valid here; expected one of {options}.", pointer)
    return value


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _int(value: Any, pointer: str, minimum: int | None = None, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("Expected an integer.", pointer)
    if minimum is not None and value < minimum:
        raise _bad(f"Must be at least {minimum}.", pointer)
    if maximum is not None and value > maximum:
        raise _bad(f"Must be at most {maximum}.", pointer)
    return value


def _number(value: Any, pointer: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad("Expected a number.", pointer)
    return value


def _bool(value: Any, pointer: str) -> bool:
    if not isinstance(value, bool):
        raise _bad("Expected true or false.", pointer)
    return value


def _string(value: Any, pointer: str, *, nullable: bool = False) -> str:
    if value is None and nullable:
        return ""  # a null text value compares as the empty string
    if not isinstance(value, str):
        raise _bad("Expected a string.", pointer)
    return value


def _strings(value: Any, pointer: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _bad("Expected a list of strings.", pointer)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise _bad("Expected a string.", f"{pointer}/{index}")
    return tuple(value)


def parse_datetime(value: Any, pointer: str) -> datetime:
    if not isinstance(value, str):
        raise _bad("Expected an ISO 8601 datetime.", pointer)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _bad(f"'{value}' is not a valid ISO 8601 datetime.", pointer) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --------------------------------------------------------------------------- filters


STRING_OPS = ("contains", "ends-with", "equals", "not-contains", "not-ends-with", "not-equals", "not-starts-with",
              "nregex", "regex", "starts-with")
NUMERIC_OPS = ("equals", "greater-than", "greater-than-or-equal", "less-than", "less-than-or-equal", "not-equals")
# filter kind -> (type, operators)
FILTER_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "string": ("string", STRING_OPS),
    "string_array": ("string", ("in", "not-in")),
    "phone": ("string", ("phone-country-code-in", "phone-country-code-not-in")),
    "numeric": ("numeric", NUMERIC_OPS),
    "integer": ("numeric", NUMERIC_OPS),
    "numeric_range": ("numeric", ("between",)),
    "boolean": ("boolean", ("equals",)),
    "existence": ("existence", ("is-set", "not-set")),
    "is_set": ("existence", ("is-set",)),
    "list_set": ("list", ("contains-all", "contains-any", "not-contains-all", "not-contains-any")),
    "list_length": ("list", ("length-equals", "length-greater-than", "length-greater-than-or-equal",
                             "length-less-than", "length-less-than-or-equal")),
    "list_substring": ("list", ("contains-substring", "not-contains-substring")),
    "list_contains": ("list", ("contains", "not-contains")),
    "date_static": ("date", ("after", "before")),
    "date_static_range": ("date", ("between-static",)),
    "date_relative": ("date", ("at-least", "in-the-last", "in-the-next")),
    "date_anniversary_relative": ("date", ("anniversary-last", "anniversary-next")),
    "date_range": ("date", ("between",)),
    "date_alltime": ("date", ("alltime",)),
    "date_calendar": ("date", ("calendar-month",)),
    "date_anniversary": ("date", ("anniversary", "anniversary-month")),
}
DATE_KINDS = ("date_static", "date_static_range", "date_relative", "date_anniversary_relative", "date_range",
              "date_calendar", "date_anniversary")
PROFILE_PROPERTY_FILTERS = ("string", "string_array", "phone", "numeric", "boolean", *DATE_KINDS,
                            "list_contains", "list_length", "existence")
METRIC_PROPERTY_FILTERS = ("string", "string_array", "existence", "list_set", "list_length", "list_substring",
                           "boolean", "numeric")
METRIC_TIMEFRAMES = ("date_static", "date_static_range", "date_relative", "date_anniversary_relative",
                     "date_range", "date_alltime")
MEMBERSHIP_TIMEFRAMES = ("date_static", "date_static_range", "date_relative", "date_range")
FUNNEL_TIMEFRAMES = ("date_static_range", "date_range", "date_relative")
STATUS_DATE_FILTERS = ("date_static", "date_static_range", "date_relative", "date_anniversary_relative",
                       "date_range", "date_calendar", "date_anniversary")
SUPPRESSION_DATE_FILTERS = (*STATUS_DATE_FILTERS, "is_set")


def _kind_of(raw: dict[str, Any], allowed: tuple[str, ...], pointer: str) -> str:
    ftype, operator = raw.get("type"), raw.get("operator")
    types = sorted({FILTER_KINDS[k][0] for k in allowed})
    if ftype not in types:
        raise _bad(f"Filter type {_show(ftype)} is not allowed here; expected one of "
                   f"{', '.join(repr(t) for t in types)}.", f"{pointer}/type")
    for kind in allowed:
        if FILTER_KINDS[kind][0] == ftype and operator in FILTER_KINDS[kind][1]:
            return kind
    ops = sorted({op for k in allowed if FILTER_KINDS[k][0] == ftype for op in FILTER_KINDS[k][1]})
    raise _bad(f"Operator {_show(operator)} is not valid for a '{ftype}' filter here; expected one of "
               f"{', '.join(ops)}.", f"{pointer}/operator")


def parse_filter(raw: Any, allowed: tuple[str, ...], pointer: str) -> Filter:
    if not isinstance(raw, dict):
        raise _bad("Expected a filter object.", pointer)
    kind = _kind_of(raw, allowed, pointer)
    op = raw["operator"]
    base = ("type", "operator")
    if kind.startswith("date"):
        return _date_filter(kind, raw, pointer)
    if kind in ("existence", "is_set"):
        _object(raw, pointer, base)
        return ValueFilter(kind, op)
    obj = _object(raw, pointer, (*base, "start", "end") if kind == "numeric_range" else (*base,),
                  () if kind == "numeric_range" else ("value",))
    at = f"{pointer}/value"
    if kind == "numeric_range":
        start, end = _number(obj["start"], f"{pointer}/start"), _number(obj["end"], f"{pointer}/end")
        return ValueFilter(kind, op, start=start, end=end)
    if "value" not in obj:
        raise _bad("'value' is a required field.", at)
    value = obj["value"]
    if kind == "string":
        if op in ("regex", "nregex"):
            pattern = _string(value, at, nullable=True)
            try:
                re.compile(pattern)
            except re.error as exc:
                raise _bad(f"Not a valid regular expression: {exc}.", at) from None
            return ValueFilter(kind, op, pattern)
        return ValueFilter(kind, op, _string(value, at, nullable=True))
    if kind in ("string_array", "list_set"):
        return ValueFilter(kind, op, _strings(value, at))
    if kind == "phone":
        codes = _strings(value, at)
        for index, code in enumerate(codes):
            if phonenumbers.country_code_for_region(code.upper()) == 0:
                raise _bad(f"'{code}' is not a country code with a phone numbering plan.", f"{at}/{index}")
        return ValueFilter(kind, op, tuple(code.upper() for code in codes))
    if kind == "numeric":
        return ValueFilter(kind, op, _number(value, at))
    if kind in ("integer", "list_length"):
        return ValueFilter(kind, op, _int(value, at, minimum=0 if kind == "list_length" else None))
    if kind == "boolean":
        return ValueFilter(kind, op, _bool(value, at))
    if kind == "list_substring":
        return ValueFilter(kind, op, _string(value, at, nullable=True))
    # list_contains: an integer or a string (or null, which matches a null element)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
        raise _bad("Expected an integer or a string.", at)
    return ValueFilter(kind, op, value)


def _date_filter(kind: str, raw: dict[str, Any], pointer: str) -> DateFilter:
    op = raw["operator"]
    base = ("type", "operator")
    if kind == "date_static":
        obj = _object(raw, pointer, (*base, "date"))
        return DateFilter(op, date=parse_datetime(obj["date"], f"{pointer}/date"))
    if kind == "date_static_range":
        obj = _object(raw, pointer, (*base, "start", "end"))
        start = parse_datetime(obj["start"], f"{pointer}/start")
        end = parse_datetime(obj["end"], f"{pointer}/end")
        if end < start:
            raise _bad("'end' must not be before 'start'.", f"{pointer}/end")
        return DateFilter(op, start=start, end=end)
    if kind in ("date_relative", "date_anniversary_relative"):
        obj = _object(raw, pointer, (*base, "unit", "quantity"))
        unit = _enum(obj["unit"], tuple(UNIT_SECONDS), f"{pointer}/unit")
        return DateFilter(op, unit=unit, quantity=_int(obj["quantity"], f"{pointer}/quantity", 0, 100_000))
    if kind == "date_range":
        obj = _object(raw, pointer, (*base, "start", "end", "unit"))
        unit = _enum(obj["unit"], tuple(UNIT_SECONDS), f"{pointer}/unit")
        start = _int(obj["start"], f"{pointer}/start", 0, 100_000)
        end = _int(obj["end"], f"{pointer}/end", 0, 100_000)
        if end < start:
            raise _bad("'end' must not be smaller than 'start'.", f"{pointer}/end")
        return DateFilter(op, unit=unit, range_start=start, range_end=end)
    if kind == "date_calendar":
        obj = _object(raw, pointer, (*base, "value"))
        return DateFilter(op, month=_int(obj["value"], f"{pointer}/value", 1, 12))
    _object(raw, pointer, base)  # alltime, anniversary, anniversary-month
    return DateFilter(op)


# --------------------------------------------------------------------------- properties

_WRAPPED = re.compile(r"^(properties|location)\[(['\"])(.+)\2\]$", re.DOTALL)


def parse_property(name: Any, pointer: str) -> PropertyRef:
    if not isinstance(name, str) or not name:
        raise _bad("Expected a property name.", pointer)
    match = _WRAPPED.match(name)
    if match:
        source, key = match.group(1), match.group(3)
        if source == "location":
            if key not in LOCATION_FIELDS:
                raise _bad(f"'{key}' is not a location field; expected one of {', '.join(LOCATION_FIELDS)}.",
                           pointer)
            return PropertyRef("location", key, "any")
        return PropertyRef("custom", key, "any")
    if name in STANDARD_FIELDS:
        return PropertyRef("column", name, STANDARD_FIELDS[name])
    if name in LOCATION_FIELDS:
        return PropertyRef("location", name, "any")
    raise _bad(f"'{name}' is not a profile property; use a standard field (e.g. 'email') or "
               f"properties['{name}'] for a custom property.", pointer)


def _event_filters(raw: Any, pointer: str) -> tuple[EventPropertyFilter, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _bad("Expected a list of property filters.", pointer)
    out = []
    for index, item in enumerate(raw):
        at = f"{pointer}/{index}"
        obj = _object(item, at, ("property",), ("filter",))
        name = obj["property"]
        if not isinstance(name, str) or not name:
            raise _bad("Expected an event property name.", f"{at}/property")
        match = _WRAPPED.match(name)
        if match and match.group(1) == "properties":
            name = match.group(3)
        flt = obj.get("filter")
        parsed = None if flt is None else parse_filter(flt, METRIC_PROPERTY_FILTERS, f"{at}/filter")
        assert parsed is None or isinstance(parsed, ValueFilter)
        out.append(EventPropertyFilter(name, parsed))
    return tuple(out)


# --------------------------------------------------------------------------- conditions


def _metric_condition(raw: dict[str, Any], pointer: str) -> MetricCondition:
    obj = _object(raw, pointer, ("type", "metric_id", "measurement", "measurement_filter", "timeframe_filter"),
                  ("metric_filters",))
    metric_id = _string(obj["metric_id"], f"{pointer}/metric_id")
    measurement = _enum(obj["measurement"], ("count", "sum"), f"{pointer}/measurement")
    measure = parse_filter(obj["measurement_filter"], ("numeric",), f"{pointer}/measurement_filter")
    assert isinstance(measure, ValueFilter)
    timeframe = parse_filter(obj["timeframe_filter"], METRIC_TIMEFRAMES, f"{pointer}/timeframe_filter")
    assert isinstance(timeframe, DateFilter)
    return MetricCondition(metric_id, measurement, measure.operator, float(measure.value), timeframe,
                           _event_filters(obj.get("metric_filters"), f"{pointer}/metric_filters"))


def _funnel_condition(raw: dict[str, Any], pointer: str) -> FunnelCondition:
    obj = _object(raw, pointer, ("type", "timeframe_filter", "steps"), ("completion_window_seconds",))
    timeframe = parse_filter(obj["timeframe_filter"], FUNNEL_TIMEFRAMES, f"{pointer}/timeframe_filter")
    assert isinstance(timeframe, DateFilter)
    window = obj.get("completion_window_seconds")
    seconds = None if window is None else COMPLETION_WINDOWS[
        _enum(window, tuple(COMPLETION_WINDOWS), f"{pointer}/completion_window_seconds")]
    steps_raw = obj["steps"]
    if not isinstance(steps_raw, list) or len(steps_raw) < 2:
        raise _bad("A funnel needs at least two steps.", f"{pointer}/steps")
    steps = []
    for index, item in enumerate(steps_raw):
        at = f"{pointer}/steps/{index}"
        step = _object(item, at, ("metric_exists", "metric_id"), ("metric_filters",))
        steps.append(FunnelStep(_bool(step["metric_exists"], f"{at}/metric_exists"),
                                _string(step["metric_id"], f"{at}/metric_id"),
                                _event_filters(step.get("metric_filters"), f"{at}/metric_filters")))
    if not any(step.exists for step in steps):
        raise _bad("A funnel needs at least one step with metric_exists true.", f"{pointer}/steps")
    return FunnelCondition(timeframe, seconds, tuple(steps))


def _membership_condition(raw: dict[str, Any], pointer: str) -> MembershipCondition:
    is_member = raw.get("is_member")
    optional = ("timeframe_filter",) if is_member is True else ()
    obj = _object(raw, pointer, ("type", "is_member", "group_ids"), optional)
    _bool(is_member, f"{pointer}/is_member")
    group_ids = _strings(obj["group_ids"], f"{pointer}/group_ids")
    if not group_ids:
        raise _bad("At least one list or segment id is required.", f"{pointer}/group_ids")
    timeframe = None
    if obj.get("timeframe_filter") is not None:
        parsed = parse_filter(obj["timeframe_filter"], MEMBERSHIP_TIMEFRAMES, f"{pointer}/timeframe_filter")
        assert isinstance(parsed, DateFilter)
        timeframe = parsed
    return MembershipCondition(bool(is_member), tuple(dict.fromkeys(group_ids)), timeframe)


def _property_condition(raw: dict[str, Any], pointer: str) -> PropertyCondition:
    obj = _object(raw, pointer, ("type", "property", "filter"))
    prop = parse_property(obj["property"], f"{pointer}/property")
    flt = parse_filter(obj["filter"], PROFILE_PROPERTY_FILTERS, f"{pointer}/filter")
    kind = flt.kind if isinstance(flt, ValueFilter) else _date_kind(flt)
    allowed = FILTERS_FOR_FIELD_KIND.get(prop.kind)
    if allowed is not None and kind not in allowed:
        raise _bad(f"'{obj['property']}' holds {prop.kind} values; a {FILTER_KINDS[kind][0]} filter with "
                   f"'{obj['filter'].get('operator')}' cannot apply to it.", f"{pointer}/filter")
    if kind == "phone" and not (prop.source == "column" and prop.name == "phone_number"):
        raise _bad("Phone country code filters apply to 'phone_number' only.", f"{pointer}/filter/operator")
    return PropertyCondition(prop, flt)


def _date_kind(flt: DateFilter) -> str:
    for kind in DATE_KINDS:
        if flt.operator in FILTER_KINDS[kind][1]:
            return kind
    return "date_alltime"


def _region_condition(raw: dict[str, Any], pointer: str) -> RegionCondition:
    obj = _object(raw, pointer, ("type", "in_region", "region"))
    return RegionCondition(_bool(obj["in_region"], f"{pointer}/in_region"),
                           _enum(obj["region"], ("european_union", "united_states"), f"{pointer}/region"))


def _postal_condition(raw: dict[str, Any], pointer: str) -> PostalDistanceCondition:
    obj = _object(raw, pointer, ("type", "country_code", "postal_code", "unit", "filter"))
    flt = obj["filter"]
    _object(flt, f"{pointer}/filter", ("type", "operator", "value"))
    _enum(flt["type"], ("numeric",), f"{pointer}/filter/type")
    operator = _enum(flt["operator"], ("greater-than", "less-than"), f"{pointer}/filter/operator")
    value = _number(flt["value"], f"{pointer}/filter/value")
    if value <= 0:
        raise _bad("The distance must be positive.", f"{pointer}/filter/value")
    return PostalDistanceCondition(_string(obj["country_code"], f"{pointer}/country_code").upper(),
                                   _string(obj["postal_code"], f"{pointer}/postal_code"),
                                   _enum(obj["unit"], ("kilometers", "miles"), f"{pointer}/unit"), operator, value)


PREDICTIVE_NUMERIC = ("average_days_between_orders", "average_order_value", "churn_probability", "historic_clv",
                      "historic_number_of_orders", "predicted_clv", "predicted_number_of_orders", "total_clv")


def _predictive_condition(raw: dict[str, Any], pointer: str) -> ConstantCondition:
    dimension = raw.get("dimension")
    at = f"{pointer}/filter"
    if dimension == "expected_date_of_next_purchase":
        obj = _object(raw, pointer, ("type", "dimension", "filter"))
        parse_filter(obj["filter"], STATUS_DATE_FILTERS, at)
    elif dimension in PREDICTIVE_NUMERIC:
        obj = _object(raw, pointer, ("type", "dimension", "filter"))
        parse_filter(obj["filter"], ("numeric",), at)
    elif dimension == "predicted_gender":
        obj = _object(raw, pointer, ("type", "dimension", "filter"))
        flt = _object(obj["filter"], at, ("type", "operator", "value"))
        _enum(flt["type"], ("string",), f"{at}/type")
        _enum(flt["operator"], ("equals", "not-equals"), f"{at}/operator")
        _enum(flt["value"], ("likely_female", "likely_male", "uncertain"), f"{at}/value")
    elif dimension == "channel_affinity":
        obj = _object(raw, pointer, ("type", "dimension", "measurement", "predicted_channel", "filter"))
        measurement = _enum(obj["measurement"], ("priority", "rank"), f"{pointer}/measurement")
        _enum(obj["predicted_channel"], ("email", "push", "sms", "whatsapp"), f"{pointer}/predicted_channel")
        flt = _object(obj["filter"], at, ("type", "operator", "value"))
        if measurement == "priority":
            _enum(flt["type"], ("numeric",), f"{at}/type")
            _enum(flt["operator"], ("equals",), f"{at}/operator")
            _int(flt["value"], f"{at}/value")
        else:
            _enum(flt["type"], ("string",), f"{at}/type")
            _enum(flt["operator"], ("equals", "not-equals"), f"{at}/operator")
            _enum(flt["value"], ("high", "low", "medium"), f"{at}/value")
    else:
        _enum(dimension, ("average_days_between_orders", "average_order_value", "channel_affinity",
                          "churn_probability", "expected_date_of_next_purchase", "historic_clv",
                          "historic_number_of_orders", "predicted_clv", "predicted_gender",
                          "predicted_number_of_orders", "total_clv"), f"{pointer}/dimension")
    # Predictive figures exist on a profile only once a model has scored it; none has here.
    return ConstantCondition(False, "predictive analytics have not been computed for any profile")


def _custom_object_condition(raw: dict[str, Any], pointer: str) -> ConstantCondition:
    obj = _object(raw, pointer, ("type", "object_type_id", "object_type_relationship_id", "filter", "filters"))
    _string(obj["object_type_id"], f"{pointer}/object_type_id")
    _string(obj["object_type_relationship_id"], f"{pointer}/object_type_relationship_id")
    parse_filter(obj["filter"], ("integer",), f"{pointer}/filter")
    if not isinstance(obj["filters"], list):
        raise _bad("Expected a list of filters.", f"{pointer}/filters")
    for index, item in enumerate(obj["filters"]):
        at = f"{pointer}/filters/{index}"
        entry = _object(item, at, ("property_id", "filter"))
        _int(entry["property_id"], f"{at}/property_id")
        parse_filter(entry["filter"], ("string", "string_array", "numeric", "numeric_range", "boolean",
                                       "date_static", "date_static_range", "date_relative",
                                       "date_anniversary_relative", "date_range", "list_contains", "list_length",
                                       "existence"), f"{at}/filter")
    raise _bad(f"The custom object type '{obj['object_type_id']}' does not exist.", f"{pointer}/object_type_id")


REACHABILITY = ("explicitly_reachable", "implicitly_reachable", "implicitly_or_explicitly_reachable",
                "explicitly_unreachable", "implicitly_unreachable", "implicitly_or_explicitly_unreachable")


def _permissions_condition(raw: dict[str, Any], pointer: str) -> ConstantCondition:
    obj = _object(raw, pointer, ("type", "permission", "channel"))
    _enum(obj["channel"], ("whatsapp_marketing", "whatsapp_transactional"), f"{pointer}/channel")
    at = f"{pointer}/permission"
    status = obj["permission"].get("reachable_status") if isinstance(obj["permission"], dict) else None
    status = _enum(status, REACHABILITY, f"{at}/reachable_status")
    explicit = status in ("explicitly_reachable", "explicitly_unreachable")
    perm = _object(obj["permission"], at, ("reachable_status", "filters") if explicit else ("reachable_status",))
    if explicit:
        if not isinstance(perm["filters"], list):
            raise _bad("Expected a list of filters.", f"{at}/filters")
        for index, item in enumerate(perm["filters"]):
            _consent_filter(item, f"{at}/filters/{index}", PERMISSION_FILTERS)
    # No WhatsApp permission has been recorded for any profile: nobody is reachable on WhatsApp
    # and nobody is explicitly unreachable, so everyone is (only) implicitly unreachable.
    return ConstantCondition(status in ("implicitly_unreachable", "implicitly_or_explicitly_unreachable"),
                             "no WhatsApp permission is recorded for any profile")


def _sample_condition(raw: dict[str, Any], pointer: str) -> SampleCondition:
    obj = _object(raw, pointer, ("type", "percentage"))
    return SampleCondition(_int(obj["percentage"], f"{pointer}/percentage", 1, 100))


# --------------------------------------------------------------------------- consent

EMAIL_SUBSCRIBED_METHODS = ("form", "preference_page", "api", "inbound_message", "back_in_stock", "sftp",
                            "manual_import", "manual_add", "integration")
EMAIL_UNSUBSCRIBED_METHODS = ("api", "inbound_message", "preference_page", "manual_remove", "spam_complaint",
                              "mailbox_provider", "one_click_unsubscribe", "manual_import", "sftp",
                              "data_warehouse_import", "profile_modification", "integration")
SMS_SUBSCRIBED_METHODS = ("form", "manual_import", "manual_add", "checkout", "inbound_message", "preference_page",
                          "sftp", "integration")
SMS_UNSUBSCRIBED_METHODS = ("form", "manual_import", "manual_add", "manual_remove", "bulk_remove", "checkout",
                            "inbound_message", "preference_page", "sftp", "carrier_deactivation",
                            "provided_landline", "message_blocked", "provided_no_age", "failed_age_gate",
                            "integration")
# Method filters that narrow by method_detail, and how: "in" (a list) or "equals".
METHOD_DETAIL = {"form": "in", "api": "in", "manual_import": "in", "manual_add": "in", "preference_page": "equals",
                 "integration": "in"}
INTEGRATION_VALUES = {"email_subscribed": ("shopify",), "email_unsubscribed": ("constant_contact",),
                      "sms_subscribed": ("shopify",), "sms_unsubscribed": ("shopify",)}
SUPPRESSION_FIELDS = ("bounce_date", "manual_suppression_date", "invalid_email_date")
PERMISSION_FILTERS = ("effective_date", "recorded_date", "subscribe_method")


@dataclass(frozen=True)
class _ConsentShape:
    fields: tuple[str, ...]  # allowed filter fields
    methods: tuple[str, ...] = ()
    methods_with_detail: tuple[str, ...] = ()  # which methods may carry a detail filter
    integration: tuple[str, ...] = ()
    filters_required: bool = False


_SUBSCRIBED_EMAIL = _ConsentShape(("is_double_opt_in", "status_date", "custom_source", "method"),
                                  EMAIL_SUBSCRIBED_METHODS, ("form", "preference_page", "api", "manual_import",
                                                             "manual_add", "integration"), ("shopify",))
_UNSUBSCRIBED_EMAIL = _ConsentShape(("status_date", "method", *SUPPRESSION_FIELDS), EMAIL_UNSUBSCRIBED_METHODS,
                                    ("integration",), ("constant_contact",))
_SUBSCRIBED_SMS = _ConsentShape(("status_date", "method", "is_rcs_capable"), SMS_SUBSCRIBED_METHODS,
                                ("form", "manual_import", "manual_add", "integration"), ("shopify",))
_UNSUBSCRIBED_SMS = _ConsentShape(("status_date", "method"), SMS_UNSUBSCRIBED_METHODS,
                                  ("form", "manual_import", "manual_add", "integration"), ("shopify",))
_SUPPRESSION_ONLY = _ConsentShape(SUPPRESSION_FIELDS)
_NO_FILTERS = _ConsentShape(())
_PUSH = _ConsentShape(("status_date",))

# (channel, can_receive, subscription) -> what its filters may be; missing = not in the spec.
CONSENT_SHAPES: dict[tuple[str, bool, str], _ConsentShape] = {
    ("email", True, "any"): _NO_FILTERS,
    ("email", True, "subscribed"): _SUBSCRIBED_EMAIL,
    ("email", True, "never_subscribed"): _NO_FILTERS,
    ("email", False, "any"): _SUPPRESSION_ONLY,
    ("email", False, "unsubscribed"): _UNSUBSCRIBED_EMAIL,
    ("email", False, "never_subscribed"): _ConsentShape(SUPPRESSION_FIELDS, filters_required=True),
    ("email", False, "subscribed"): _ConsentShape(SUPPRESSION_FIELDS, filters_required=True),
    ("sms", True, "subscribed"): _SUBSCRIBED_SMS,
    ("sms", False, "any"): _NO_FILTERS,
    ("sms", False, "unsubscribed"): _UNSUBSCRIBED_SMS,
    ("sms", False, "never_subscribed"): _NO_FILTERS,
    ("push", True, "any"): _PUSH,
    ("push", False, "any"): _NO_FILTERS,
}


def _consent_condition(raw: dict[str, Any], pointer: str) -> ConsentCondition:
    obj = _object(raw, pointer, ("type", "consent"))
    at = f"{pointer}/consent"
    consent = _object(obj["consent"], at, ("channel", "can_receive_marketing", "consent_status"))
    channel = _enum(consent["channel"], ("email", "push", "sms"), f"{at}/channel")
    can_receive = _bool(consent["can_receive_marketing"], f"{at}/can_receive_marketing")
    status_at = f"{at}/consent_status"
    status = consent["consent_status"]
    allowed = sorted({s for (c, r, s) in CONSENT_SHAPES if c == channel and r == can_receive})
    subscription = _enum(status.get("subscription") if isinstance(status, dict) else None, tuple(allowed),
                         f"{status_at}/subscription")
    shape = CONSENT_SHAPES[(channel, can_receive, subscription)]
    required = ("subscription", "filters") if shape.filters_required else ("subscription",)
    status = _object(status, status_at, required, ("filters",))
    raw_filters = status.get("filters")
    if raw_filters and not shape.fields:
        raise _bad("No filters can be given for this consent status.", f"{status_at}/filters")
    filters: list[ConsentFilter] = []
    if raw_filters is not None:
        if not isinstance(raw_filters, list):
            raise _bad("Expected a list of filters.", f"{status_at}/filters")
        for index, item in enumerate(raw_filters):
            filters.append(_consent_filter(item, f"{status_at}/filters/{index}", shape.fields, shape))
    return ConsentCondition(channel, can_receive, subscription, tuple(filters))


def _consent_filter(raw: Any, pointer: str, fields: tuple[str, ...], shape: _ConsentShape | None = None
                    ) -> ConsentFilter:
    if not isinstance(raw, dict):
        raise _bad("Expected a filter object.", pointer)
    field = _enum(raw.get("field"), fields, f"{pointer}/field")
    if field in ("method", "subscribe_method"):
        methods = shape.methods if shape is not None else ("form", *_PERMISSION_METHODS)
        obj = _object(raw, pointer, ("field", "method"), ("filter",))
        method = _enum(obj["method"], methods, f"{pointer}/method")
        flt = obj.get("filter")
        detail: Filter | None = None
        with_detail = shape.methods_with_detail if shape is not None else ("form",)
        if method == "integration" and flt is None:
            raise _bad("'filter' is a required field.", f"{pointer}/filter")
        if flt is not None:
            if method not in with_detail:
                raise _bad(f"The method '{method}' takes no filter.", f"{pointer}/filter")
            how = METHOD_DETAIL.get(method, "in")
            detail = parse_filter(flt, ("string_array",) if how == "in" else ("string",), f"{pointer}/filter")
            assert isinstance(detail, ValueFilter)
            if detail.operator not in ("in", "equals"):
                raise _bad(f"Only '{how}' can filter this method.", f"{pointer}/filter/operator")
            if method == "integration" and shape is not None:
                for index, item in enumerate(detail.value):
                    if item not in shape.integration:
                        raise _bad(f"'{item}' is not an integration allowed here.", f"{pointer}/filter/value/{index}")
        return ConsentFilter(field, method, detail)
    obj = _object(raw, pointer, ("field", "filter"))
    if field in ("is_double_opt_in", "is_rcs_capable"):
        return ConsentFilter(field, None, parse_filter(obj["filter"], ("boolean",), f"{pointer}/filter"))
    if field == "custom_source":
        flt = parse_filter(obj["filter"], ("string",), f"{pointer}/filter")
        assert isinstance(flt, ValueFilter)
        if flt.operator != "equals":
            raise _bad("Only 'equals' can filter the custom source.", f"{pointer}/filter/operator")
        return ConsentFilter(field, None, flt)
    allowed = SUPPRESSION_DATE_FILTERS if field in SUPPRESSION_FIELDS else STATUS_DATE_FILTERS
    return ConsentFilter(field, None, parse_filter(obj["filter"], allowed, f"{pointer}/filter"))


_PERMISSION_METHODS = ("api", "back_in_stock", "bigcommerce", "bulk_remove", "campaign_monitor",
                       "carrier_deactivation", "checkout", "constant_contact", "exact_target", "facebook",
                       "failed_age_gate", "inbound_message", "integration", "mad_mimi", "magento_two",
                       "mailbox_provider", "manual_add", "manual_import", "manual_remove", "message_blocked",
                       "netsuite", "preference_page", "provided_landline", "provided_no_age", "sftp", "shopify",
                       "social_instagram_message", "spam_complaint", "square", "wix", "woocommerce")


# --------------------------------------------------------------------------- definition

Parser = Callable[[dict[str, Any], str], Condition]
SEGMENT_CONDITIONS: dict[str, Parser] = {
    "profile-group-membership": _membership_condition,
    "profile-metric": _metric_condition,
    "profile-marketing-consent": _consent_condition,
    "profile-postal-code-distance": _postal_condition,
    "profile-property": _property_condition,
    "profile-region": _region_condition,
    "profile-predictive-analytics": _predictive_condition,
    "profile-has-custom-object": _custom_object_condition,
    "profile-permissions": _permissions_condition,
    "profile-metric-funnel": _funnel_condition,
}
# Flow filters use the same conditions plus a random sample (not part of a segment's schema).
FLOW_CONDITIONS: dict[str, Parser] = {**SEGMENT_CONDITIONS, "profile-sample": _sample_condition}


def parse_definition(raw: Any, pointer: str = "/data/attributes/definition",
                     conditions: Mapping[str, Parser] = SEGMENT_CONDITIONS) -> Definition:
    obj = _object(raw, pointer, ("condition_groups",))
    groups_raw = obj["condition_groups"]
    if not isinstance(groups_raw, list) or not groups_raw:
        raise _bad("A definition needs at least one condition group.", f"{pointer}/condition_groups")
    groups = []
    count = 0
    for gi, group in enumerate(groups_raw):
        gat = f"{pointer}/condition_groups/{gi}"
        gobj = _object(group, gat, ("conditions",))
        items = gobj["conditions"]
        if not isinstance(items, list) or not items:
            raise _bad("A condition group needs at least one condition.", f"{gat}/conditions")
        parsed = []
        for ci, item in enumerate(items):
            cat = f"{gat}/conditions/{ci}"
            count += 1
            if count > MAX_CONDITIONS:
                raise _bad(f"A segment can have at most {MAX_CONDITIONS} conditions.", cat)
            if not isinstance(item, dict):
                raise _bad("Expected a condition object.", cat)
            kind = item.get("type")
            parser = conditions.get(kind) if isinstance(kind, str) else None
            if parser is None:
                raise _bad(f"{_show(kind)} is not a valid condition type; expected one of "
                           f"{', '.join(sorted(conditions))}.", f"{cat}/type")
            parsed.append(parser(item, cat))
        groups.append(tuple(parsed))
    return Definition(tuple(groups))


# --------------------------------------------------------------------------- what a definition reads


@dataclass(frozen=True)
class Dependencies:
    metrics: frozenset[str]
    groups: frozenset[str]
    profile: bool  # reads profile fields, consent or location
    refresh_seconds: int | None  # re-evaluate this often because time moves (None: never needed)

    def to_json(self) -> dict[str, Any]:
        return {"metrics": sorted(self.metrics), "groups": sorted(self.groups), "profile": self.profile,
                "refresh_seconds": self.refresh_seconds}

    @staticmethod
    def from_json(raw: Mapping[str, Any]) -> Dependencies:
        return Dependencies(frozenset(raw.get("metrics", ())), frozenset(raw.get("groups", ())),
                            bool(raw.get("profile")), raw.get("refresh_seconds"))


def dependencies(definition: Definition) -> Dependencies:
    metrics: set[str] = set()
    groups: set[str] = set()
    profile = False
    units: list[int] = []

    def note(flt: Filter | None) -> None:
        if isinstance(flt, DateFilter) and flt.relative:
            units.append(UNIT_SECONDS[flt.unit] if flt.unit else UNIT_SECONDS["day"])

    for cond in definition.conditions():
        if isinstance(cond, MetricCondition):
            metrics.add(cond.metric_id)
            note(cond.timeframe)
        elif isinstance(cond, FunnelCondition):
            metrics.update(step.metric_id for step in cond.steps)
            note(cond.timeframe)
        elif isinstance(cond, MembershipCondition):
            groups.update(cond.group_ids)
            note(cond.timeframe)
        elif isinstance(cond, PropertyCondition):
            profile = True
            note(cond.filter)
        elif isinstance(cond, ConsentCondition):
            profile = True
            for cf in cond.filters:
                note(cf.filter)
        elif isinstance(cond, RegionCondition | PostalDistanceCondition | SampleCondition):
            profile = True
    refresh = None
    if units:
        # A member ages out at most this late: a sixtieth of the finest unit, between 1 min and 1 h.
        refresh = max(60, min(3600, min(units) // 60))
    return Dependencies(frozenset(metrics), frozenset(groups), profile, refresh)
