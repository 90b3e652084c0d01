"""Filter objects parsed into DateFilter / ValueFilter, with the operators each filter kind allows."""

from __future__ import annotations

import re
from typing import Any

import phonenumbers

from menura.domain.segment_conditions.filters import UNIT_SECONDS, DateFilter, Filter, ValueFilter
from menura.domain.segment_conditions.parsing import (
    bad,
    expect_bool,
    expect_int,
    expect_number,
    expect_object,
    expect_one_of,
    expect_string,
    expect_strings,
    parse_datetime,
    show,
)

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
        raise bad(f"Filter type {show(ftype)} is not allowed here; expected one of "
                  f"{', '.join(repr(t) for t in types)}.", f"{pointer}/type")
    for kind in allowed:
        if FILTER_KINDS[kind][0] == ftype and operator in FILTER_KINDS[kind][1]:
            return kind
    ops = sorted({op for k in allowed if FILTER_KINDS[k][0] == ftype for op in FILTER_KINDS[k][1]})
    raise bad(f"Operator {show(operator)} is not valid for a '{ftype}' filter here; expected one of "
              f"{', '.join(ops)}.", f"{pointer}/operator")


def parse_filter(raw: Any, allowed: tuple[str, ...], pointer: str) -> Filter:
    if not isinstance(raw, dict):
        raise bad("Expected a filter object.", pointer)
    kind = _kind_of(raw, allowed, pointer)
    op = raw["operator"]
    base = ("type", "operator")
    if kind.startswith("date"):
        return _date_filter(kind, raw, pointer)
    if kind in ("existence", "is_set"):
        expect_object(raw, pointer, base)
        return ValueFilter(kind, op)
    obj = expect_object(raw, pointer, (*base, "start", "end") if kind == "numeric_range" else (*base,),
                        () if kind == "numeric_range" else ("value",))
    at = f"{pointer}/value"
    if kind == "numeric_range":
        start, end = expect_number(obj["start"], f"{pointer}/start"), expect_number(obj["end"], f"{pointer}/end")
        return ValueFilter(kind, op, start=start, end=end)
    if "value" not in obj:
        raise bad("'value' is a required field.", at)
    value = obj["value"]
    if kind == "string":
        if op in ("regex", "nregex"):
            pattern = expect_string(value, at, nullable=True)
            try:
                re.compile(pattern)
            except re.error as exc:
                raise bad(f"Not a valid regular expression: {exc}.", at) from None
            return ValueFilter(kind, op, pattern)
        return ValueFilter(kind, op, expect_string(value, at, nullable=True))
    if kind in ("string_array", "list_set"):
        return ValueFilter(kind, op, expect_strings(value, at))
    if kind == "phone":
        codes = expect_strings(value, at)
        for index, code in enumerate(codes):
            if phonenumbers.country_code_for_region(code.upper()) == 0:
                raise bad(f"'{code}' is not a country code with a phone numbering plan.", f"{at}/{index}")
        return ValueFilter(kind, op, tuple(code.upper() for code in codes))
    if kind == "numeric":
        return ValueFilter(kind, op, expect_number(value, at))
    if kind in ("integer", "list_length"):
        return ValueFilter(kind, op, expect_int(value, at, minimum=0 if kind == "list_length" else None))
    if kind == "boolean":
        return ValueFilter(kind, op, expect_bool(value, at))
    if kind == "list_substring":
        return ValueFilter(kind, op, expect_string(value, at, nullable=True))
    # list_contains: an integer or a string (or null, which matches a null element)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
        raise bad("Expected an integer or a string.", at)
    return ValueFilter(kind, op, value)


def _date_filter(kind: str, raw: dict[str, Any], pointer: str) -> DateFilter:
    op = raw["operator"]
    base = ("type", "operator")
    if kind == "date_static":
        obj = expect_object(raw, pointer, (*base, "date"))
        return DateFilter(op, date=parse_datetime(obj["date"], f"{pointer}/date"))
    if kind == "date_static_range":
        obj = expect_object(raw, pointer, (*base, "start", "end"))
        start = parse_datetime(obj["start"], f"{pointer}/start")
        end = parse_datetime(obj["end"], f"{pointer}/end")
        if end < start:
            raise bad("'end' must not be before 'start'.", f"{pointer}/end")
        return DateFilter(op, start=start, end=end)
    if kind in ("date_relative", "date_anniversary_relative"):
        obj = expect_object(raw, pointer, (*base, "unit", "quantity"))
        unit = expect_one_of(obj["unit"], tuple(UNIT_SECONDS), f"{pointer}/unit")
        return DateFilter(op, unit=unit, quantity=expect_int(obj["quantity"], f"{pointer}/quantity", 0, 100_000))
    if kind == "date_range":
        obj = expect_object(raw, pointer, (*base, "start", "end", "unit"))
        unit = expect_one_of(obj["unit"], tuple(UNIT_SECONDS), f"{pointer}/unit")
        start = expect_int(obj["start"], f"{pointer}/start", 0, 100_000)
        end = expect_int(obj["end"], f"{pointer}/end", 0, 100_000)
        if end < start:
            raise bad("'end' must not be smaller than 'start'.", f"{pointer}/end")
        return DateFilter(op, unit=unit, range_start=start, range_end=end)
    if kind == "date_calendar":
        obj = expect_object(raw, pointer, (*base, "value"))
        return DateFilter(op, month=expect_int(obj["value"], f"{pointer}/value", 1, 12))
    expect_object(raw, pointer, base)  # alltime, anniversary, anniversary-month
    return DateFilter(op)
