"""Resource-agnostic pieces of the dialect: query parsing, sparse fieldsets, cursors, revisions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from menura.jsonapi.documents import Included, LinkBuilder, ResourceType, pick_fields, resource_object
from menura.jsonapi.errors import ApiError
from menura.jsonapi.pagination import CursorCodec
from menura.jsonapi.query import PageBounds, QuerySpec, parse_query
from menura.jsonapi.revisions import parse_revision

SPEC = QuerySpec(fields={"tag": ("name", "id")}, include=("tag-group",), sort=("name",),
                 page=PageBounds(default=50, minimum=1, maximum=50), filters={},
                 additional_fields={"profile": ("subscriptions",)})


def test_parse_query_happy_path():
    q = parse_query({"fields[tag]": "name", "include": "tag-group", "sort": "-name", "page[size]": "10",
                     "page[cursor]": "abc", "additional-fields[profile]": "subscriptions"}, SPEC)
    assert q.fields == {"tag": ["name"]} and q.include == ["tag-group"]
    assert (q.sort, q.descending, q.page_size, q.cursor) == ("name", True, 10, "abc")
    assert q.wants("profile", "subscriptions")


@pytest.mark.parametrize("params,parameter", [
    ({"fields[tag]": "nope"}, "fields[tag]"),
    ({"fields[other]": "x"}, "fields[other]"),
    ({"include": "nope"}, "include"),
    ({"sort": "created"}, "sort"),
    ({"page[size]": "51"}, "page[size]"),
    ({"page[size]": "0"}, "page[size]"),
    ({"page[size]": "ten"}, "page[size]"),
    ({"additional-fields[profile]": "nope"}, "additional-fields[profile]"),
])
def test_parse_query_rejects_with_parameter(params, parameter):
    with pytest.raises(ApiError) as err:
        parse_query(params, SPEC)
    assert err.value.status == 400 and err.value.parameter == parameter


def test_filter_on_an_operation_without_filters_is_rejected():
    with pytest.raises(ApiError) as err:
        parse_query({"filter": "equals(name,'x')"}, QuerySpec())
    assert err.value.parameter == "filter"


def test_pick_fields_nested():
    attrs = {"a": 1, "b": {"c": 2, "d": {"e": 3, "f": 4}}}
    assert pick_fields(attrs, ["a", "b.d.e"]) == {"a": 1, "b": {"d": {"e": 3}}}
    assert pick_fields(attrs, ["missing", "b.x"]) == {}
    assert pick_fields(attrs, None) == attrs


def test_resource_object_links_and_relationships():
    rtype = ResourceType("tag", "tags", relationships=("tag-group",))
    obj = resource_object(rtype, "t1", {"name": "x"}, LinkBuilder("http://h:1/"),
                          relationship_data={"tag-group": {"type": "tag-group", "id": "g"}})
    assert obj["links"] == {"self": "http://h:1/api/tags/t1/"}
    rel = obj["relationships"]["tag-group"]
    assert list(rel) == ["data", "links"]
    assert rel["links"]["related"] == "http://h:1/api/tags/t1/tag-group/"


def test_included_deduplicates():
    inc = Included()
    inc.extend([{"type": "a", "id": "1"}, {"type": "a", "id": "1", "x": 2}, {"type": "b", "id": "1"}])
    assert inc.as_list() == [{"type": "a", "id": "1"}, {"type": "b", "id": "1"}]


def test_cursor_round_trip_and_tamper_proof():
    codec = CursorCodec(b"secret")
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    token = codec.encode([when, "id1"], "next", "scope")
    assert codec.decode(token, "scope") == ([when, "id1"], "next")
    with pytest.raises(ApiError):
        codec.decode(token, "other-scope")
    with pytest.raises(ApiError):
        codec.decode(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], "scope")
    with pytest.raises(ApiError):
        CursorCodec(b"other").decode(token, "scope")
    with pytest.raises(ApiError):
        codec.decode("%%%", "scope")


@pytest.mark.parametrize("header,expected", [("2026-07-15", "2026-07-15"), ("2024-10-15.pre", "2024-10-15"),
                                             (" 2025-01-15 ", "2025-01-15")])
def test_revision_accepted(header, expected):
    assert parse_revision(header) == expected


@pytest.mark.parametrize("header", [None, "", "2026-7-15", "2023-02-22", "latest"])
def test_revision_rejected(header):
    with pytest.raises(ApiError) as err:
        parse_revision(header)
    assert err.value.status == 400 and err.value.parameter == "revision"
