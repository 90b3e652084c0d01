"""Conditions on what a profile holds: a property, the region it is in, its distance from a postal code."""

from __future__ import annotations

from typing import Any

from menura.domain.segment_conditions.conditions import PostalDistanceCondition, PropertyCondition, RegionCondition
from menura.domain.segment_conditions.filter_parsing import (
    DATE_KINDS,
    FILTER_KINDS,
    PROFILE_PROPERTY_FILTERS,
    parse_filter,
)
from menura.domain.segment_conditions.filters import DateFilter, ValueFilter
from menura.domain.segment_conditions.parsing import (
    bad,
    expect_bool,
    expect_number,
    expect_object,
    expect_one_of,
    expect_string,
)
from menura.domain.segment_conditions.properties import FILTERS_FOR_FIELD_KIND, parse_property


def property_condition(raw: dict[str, Any], pointer: str) -> PropertyCondition:
    obj = expect_object(raw, pointer, ("type", "property", "filter"))
    prop = parse_property(obj["property"], f"{pointer}/property")
    flt = parse_filter(obj["filter"], PROFILE_PROPERTY_FILTERS, f"{pointer}/filter")
    kind = flt.kind if isinstance(flt, ValueFilter) else _date_kind(flt)
    allowed = FILTERS_FOR_FIELD_KIND.get(prop.kind)
    if allowed is not None and kind not in allowed:
        raise bad(f"'{obj['property']}' holds {prop.kind} values; a {FILTER_KINDS[kind][0]} filter with "
                  f"'{obj['filter'].get('operator')}' cannot apply to it.", f"{pointer}/filter")
    if kind == "phone" and not (prop.source == "column" and prop.name == "phone_number"):
        raise bad("Phone country code filters apply to 'phone_number' only.", f"{pointer}/filter/operator")
    return PropertyCondition(prop, flt)


def _date_kind(flt: DateFilter) -> str:
    for kind in DATE_KINDS:
        if flt.operator in FILTER_KINDS[kind][1]:
            return kind
    return "date_alltime"


def region_condition(raw: dict[str, Any], pointer: str) -> RegionCondition:
    obj = expect_object(raw, pointer, ("type", "in_region", "region"))
    return RegionCondition(expect_bool(obj["in_region"], f"{pointer}/in_region"),
                           expect_one_of(obj["region"], ("european_union", "united_states"), f"{pointer}/region"))


def postal_condition(raw: dict[str, Any], pointer: str) -> PostalDistanceCondition:
    obj = expect_object(raw, pointer, ("type", "country_code", "postal_code", "unit", "filter"))
    flt = obj["filter"]
    expect_object(flt, f"{pointer}/filter", ("type", "operator", "value"))
    expect_one_of(flt["type"], ("numeric",), f"{pointer}/filter/type")
    operator = expect_one_of(flt["operator"], ("greater-than", "less-than"), f"{pointer}/filter/operator")
    value = expect_number(flt["value"], f"{pointer}/filter/value")
    if value <= 0:
        raise bad("The distance must be positive.", f"{pointer}/filter/value")
    unit = expect_one_of(obj["unit"], ("kilometers", "miles"), f"{pointer}/unit")
    return PostalDistanceCondition(expect_string(obj["country_code"], f"{pointer}/country_code").upper(),
                                   expect_string(obj["postal_code"], f"{pointer}/postal_code"), unit, operator, value)
