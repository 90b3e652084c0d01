"""Query parameters of Klaviyo's dialect: fields[..], additional-fields[..], include, sort, page[..], filter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from menura.jsonapi.errors import invalid


@dataclass(frozen=True)
class PageBounds:
    default: int
    minimum: int = 1
    maximum: int = 100


@dataclass(frozen=True)
class QuerySpec:
    """What one operation accepts, as its spec entry lists it."""

    fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # type -> allowed fields
    include: tuple[str, ...] = ()
    sort: tuple[str, ...] = ()  # sortable fields; "-x" is implied for each
    page: PageBounds | None = None
    filters: Mapping[str, Any] | None = None  # menura.jsonapi.filters.FilterSpec
    additional_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    fields: dict[str, list[str]]
    additional_fields: dict[str, list[str]]
    include: list[str]
    sort: str | None  # field name
    descending: bool
    page_size: int
    cursor: str | None
    filter: str | None

    def fields_for(self, rtype: str) -> list[str] | None:
        return self.fields.get(rtype)

    def wants(self, rtype: str, additional: str) -> bool:
        return additional in self.additional_fields.get(rtype, [])


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


# The answer for no query parameters at all, per spec (most write requests carry none).
_bare_queries: dict[int, tuple[QuerySpec, Query]] = {}


def parse_query(params: Mapping[str, str], spec: QuerySpec) -> Query:
    if not params:
        known = _bare_queries.get(id(spec))
        if known is None or known[0] is not spec:
            known = _bare_queries[id(spec)] = (spec, _parse_query(params, spec))
        return known[1]
    return _parse_query(params, spec)


def _parse_query(params: Mapping[str, str], spec: QuerySpec) -> Query:
    fields: dict[str, list[str]] = {}
    additional: dict[str, list[str]] = {}
    for name, value in params.items():
        if name.startswith("fields[") and name.endswith("]"):
            rtype = name[7:-1]
            allowed = spec.fields.get(rtype)
            if allowed is None:
                raise invalid(f"'{rtype}' is not a valid resource type for a sparse fieldset here.",
                              parameter=name)
            wanted = _split(value)
            for item in wanted:
                if item not in allowed:
                    raise invalid(f"'{item}' is not a valid field for the resource '{rtype}'.", parameter=name)
            fields[rtype] = wanted
        elif name.startswith("additional-fields[") and name.endswith("]"):
            rtype = name[18:-1]
            allowed = spec.additional_fields.get(rtype, ())
            wanted = _split(value)
            for item in wanted:
                if item not in allowed:
                    raise invalid(f"'{item}' is not a valid additional field for the resource '{rtype}'.",
                                  parameter=name)
            additional[rtype] = wanted

    include = _split(params.get("include", ""))
    for item in include:
        if item not in spec.include:
            raise invalid(f"'{item}' is not a valid relationship to include.", parameter="include")

    sort_field, descending = None, False
    if params.get("sort"):
        raw = params["sort"].strip()
        descending = raw.startswith("-")
        sort_field = raw.lstrip("-")
        if sort_field not in spec.sort:
            raise invalid(f"'{raw}' is not a valid sort value.", parameter="sort")

    page_size = spec.page.default if spec.page else 0
    if spec.page and "page[size]" in params:
        raw_size = params["page[size]"]
        try:
            page_size = int(raw_size)
        except ValueError:
            raise invalid(f"page[size] must be an integer, not '{raw_size}'.", parameter="page[size]") from None
        if not spec.page.minimum <= page_size <= spec.page.maximum:
            raise invalid(f"page[size] must be between {spec.page.minimum} and {spec.page.maximum}.",
                          parameter="page[size]")
    cursor = params.get("page[cursor]") or None
    filter_text = params.get("filter") or None
    if filter_text is not None and spec.filters is None:
        raise invalid("This endpoint does not support filtering.", parameter="filter")
    return Query(fields, additional, include, sort_field, descending, page_size, cursor, filter_text)
