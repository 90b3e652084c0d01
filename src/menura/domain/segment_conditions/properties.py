"""Property names: profile fields, location fields and custom properties, and event property filters."""

from __future__ import annotations

import re
from typing import Any

from menura.domain.segment_conditions.conditions import EventPropertyFilter, PropertyRef
from menura.domain.segment_conditions.filter_parsing import METRIC_PROPERTY_FILTERS, parse_filter
from menura.domain.segment_conditions.filters import ValueFilter
from menura.domain.segment_conditions.parsing import bad, expect_object

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


_WRAPPED = re.compile(r"^(properties|location)\[(['\"])(.+)\2\]$", re.DOTALL)


def parse_property(name: Any, pointer: str) -> PropertyRef:
    if not isinstance(name, str) or not name:
        raise bad("Expected a property name.", pointer)
    match = _WRAPPED.match(name)
    if match:
        source, key = match.group(1), match.group(3)
        if source == "location":
            if key not in LOCATION_FIELDS:
                raise bad(f"'{key}' is not a location field; expected one of {', '.join(LOCATION_FIELDS)}.",
                          pointer)
            return PropertyRef("location", key, "any")
        return PropertyRef("custom", key, "any")
    if name in STANDARD_FIELDS:
        return PropertyRef("column", name, STANDARD_FIELDS[name])
    if name in LOCATION_FIELDS:
        return PropertyRef("location", name, "any")
    raise bad(f"'{name}' is not a profile property; use a standard field (e.g. 'email') or "
              f"properties['{name}'] for a custom property.", pointer)


def event_filters(raw: Any, pointer: str) -> tuple[EventPropertyFilter, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise bad("Expected a list of property filters.", pointer)
    out = []
    for index, item in enumerate(raw):
        at = f"{pointer}/{index}"
        obj = expect_object(item, at, ("property",), ("filter",))
        name = obj["property"]
        if not isinstance(name, str) or not name:
            raise bad("Expected an event property name.", f"{at}/property")
        match = _WRAPPED.match(name)
        if match and match.group(1) == "properties":
            name = match.group(3)
        flt = obj.get("filter")
        parsed = None if flt is None else parse_filter(flt, METRIC_PROPERTY_FILTERS, f"{at}/filter")
        assert parsed is None or isinstance(parsed, ValueFilter)
        out.append(EventPropertyFilter(name, parsed))
    return tuple(out)
