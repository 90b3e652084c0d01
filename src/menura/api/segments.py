"""Segments category: the 11 operations on segments, their tags, members and flow triggers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Row

from menura.api.bodies import Document, expect_id, expect_type, missing
from menura.api.costly import limit_costly
from menura.api.group_members import EMAIL_FILTER, MEMBER_FIELDS, MEMBER_PAGE, PHONE_FILTER, GroupMembers
from menura.api.listing import Listing, attach_includes, list_resources
from menura.api.operation import Category, Ctx, Reply, tier
from menura.api.profiles import ADDITIONAL as PROFILE_ADDITIONAL
from menura.api.related import FLOW_FIELDS, TAG_FIELDS, FlowProvider, TagsAndFlows
from menura.domain import segments as rules
from menura.engine.segments import live  # noqa: F401  (registers the live hooks in this process)
from menura.jsonapi import errors
from menura.jsonapi.documents import ResourceType, resource_object, single_document
from menura.jsonapi.filters import FilterField, boolean_field, datetime_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import segments as store
from menura.store.segment_tables import segment_members as members_table
from menura.store.segment_tables import segments as segments_table

api = Category("Segments")
SEGMENT = ResourceType("segment", "segments", relationships=("profiles", "tags", "flow-triggers"))

READ = tier(75, 750)
WRITE = tier(1, 15)
DELETE = tier(3, 60)
SLOW = tier(3, 60)
PROFILE_COUNT_RATE = tier(1, 15)

SEGMENT_FIELDS = ("created", "definition", "definition.condition_groups", "id", "is_active", "is_processing",
                  "is_starred", "name", "updated")

# Flows triggered by a segment, provided by the flows category once it exists:
# (ctx, connection, segment id) -> flow resource objects (type "flow"), in a stable order.
FLOWS_TRIGGERED_BY_SEGMENT: list[FlowProvider] = []


def _any_or_equals(column: Any, *, single: bool) -> FilterField:
    return FilterField("string", single=frozenset({"equals"}) if single else frozenset(),
                       list=frozenset({"any", "equals"}), column=column)


SEGMENT_FILTERS: dict[str, FilterField] = {
    "name": _any_or_equals(segments_table.c.name, single=False),
    "id": _any_or_equals(segments_table.c.id, single=True),
    "created": datetime_field(segments_table.c.created, ops=("greater-than",)),
    "updated": datetime_field(segments_table.c.updated, ops=("greater-than",)),
    "is_active": FilterField("boolean", single=frozenset({"equals"}), list=frozenset({"any", "equals"}),
                             column=segments_table.c.is_active),
    "is_starred": boolean_field(segments_table.c.is_starred),
}


# --------------------------------------------------------------------------- serialization


def segment_resource(ctx: Ctx, row: Row[Any], *, profile_count: int | None = None) -> dict[str, Any]:
    assert ctx.query is not None
    return resource_object(SEGMENT, row.id, rules.attributes(row, profile_count=profile_count), ctx.links,
                           fields=ctx.query.fields_for("segment"))


def segment_resources(conn: Connection, ctx: Ctx, segment_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Segment resource objects in the order given; for the Profiles category's endpoints."""
    rows = {row.id: row for row in store.segments_by_ids(conn, ctx.account_id, segment_ids)}
    return [segment_resource(ctx, rows[sid]) for sid in dict.fromkeys(segment_ids) if sid in rows]


def _segment_or_404(conn: Connection, ctx: Ctx) -> Row[Any]:
    return rules.get_segment(conn, ctx.account_id, ctx.path_params["id"])


RELATED = TagsAndFlows("segment", _segment_or_404, FLOWS_TRIGGERED_BY_SEGMENT)
INCLUDES = RELATED.includes()
MEMBERS = GroupMembers(profile_id=members_table.c.profile_id, group_id=members_table.c.segment_id,
                       joined=members_table.c.joined_at, load_group=_segment_or_404)
MEMBER_FILTERS: dict[str, FilterField] = {
    "profile_id": FilterField("string", list=frozenset({"any", "equals"}), column=members_table.c.profile_id),
    "email": EMAIL_FILTER,
    "phone_number": PHONE_FILTER,
    "push_token": MEMBERS.push_token_filter(),
    "_kx": MEMBERS.kx_filter(),
    "joined_group_at": MEMBERS.joined_filter(),
}


# --------------------------------------------------------------------------- segments


@api.get("/api/segments", "get_segments", scopes=("segments:read",), rate=READ,
         query=QuerySpec(fields={"segment": SEGMENT_FIELDS, "tag": TAG_FIELDS, "flow": FLOW_FIELDS},
                         include=("flow-triggers", "tags"), sort=("created", "id", "name", "updated"),
                         page=PageBounds(default=10, maximum=10), filters=SEGMENT_FILTERS))
def get_segments(ctx: Ctx) -> dict[str, Any]:
    """Get Segments."""
    listing = Listing(select=store.segment_select(ctx.account_id), id_column=segments_table.c.id,
                      sort_columns={"created": segments_table.c.created, "id": segments_table.c.id,
                                    "name": segments_table.c.name, "updated": segments_table.c.updated})
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: segment_resource(ctx, row), includes=INCLUDES)


class _SegmentCreate(msgspec.Struct):
    type: str
    attributes: dict[str, Any]


ALLOWED_ON_CREATE = ("name", "definition", "is_starred")
ALLOWED_ON_UPDATE = ("name", "definition", "is_starred", "is_active")


def _check_attributes(attributes: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in attributes:
        if key not in allowed:
            raise errors.invalid(f"'{key}' is not a valid field for the resource 'segment'.",
                                 pointer=f"/data/attributes/{key}")
    for key in ("is_starred", "is_active"):
        if attributes.get(key) is not None and not isinstance(attributes[key], bool):
            raise errors.invalid(f"'{key}' must be true or false.", pointer=f"/data/attributes/{key}")


@api.post("/api/segments", "create_segment", scopes=("segments:write",), rate=WRITE, success=201,
          query=QuerySpec(fields={"segment": SEGMENT_FIELDS}))
def create_segment(ctx: Ctx) -> Reply:
    """Create Segment: accepted at once, membership computed in the background (`is_processing`)."""
    data = ctx.body(Document[_SegmentCreate]).data
    expect_type(data.type, "segment")
    attributes = data.attributes
    _check_attributes(attributes, ALLOWED_ON_CREATE)
    for name in ("name", "definition"):
        if attributes.get(name) is None:
            raise missing(f"/data/attributes/{name}")
    row = rules.create_segment(ctx.db, ctx.account_id, ctx.now(), name=attributes["name"],
                               definition=attributes["definition"], is_starred=attributes.get("is_starred"))
    ctx.services.work_signal.set()
    resource = segment_resource(ctx, row)
    return Reply(201, single_document(resource, links={"self": resource["links"]["self"]}))


@api.get("/api/segments/{id}", "get_segment", scopes=("segments:read",), rate=READ,
         query=QuerySpec(fields={"segment": (*SEGMENT_FIELDS, "profile_count"), "tag": TAG_FIELDS,
                                 "flow": FLOW_FIELDS},
                         include=("flow-triggers", "tags"), additional_fields={"segment": ("profile_count",)}))
def get_segment(ctx: Ctx) -> dict[str, Any]:
    """Get Segment (with `additional-fields[segment]=profile_count`)."""
    assert ctx.query is not None
    count = None
    if ctx.query.wants("segment", "profile_count"):
        limit_costly(ctx, "profile_count", PROFILE_COUNT_RATE)
    with ctx.db.read() as conn:
        row = _segment_or_404(conn, ctx)
        if ctx.query.wants("segment", "profile_count"):
            count = store.member_counts(conn, [row.id]).get(row.id, 0)
        data = [segment_resource(ctx, row, profile_count=count)]
        included = attach_includes(ctx, conn, [row], data, INCLUDES)
    return single_document(data[0], included, links={"self": ctx.url})


class _SegmentUpdate(msgspec.Struct):
    type: str
    id: str
    attributes: dict[str, Any]


@api.patch("/api/segments/{id}", "update_segment", scopes=("segments:write",), rate=WRITE,
           query=QuerySpec(fields={"segment": SEGMENT_FIELDS}))
def update_segment(ctx: Ctx) -> dict[str, Any]:
    """Update Segment: name, starred, definition (recomputed in the background), active."""
    data = ctx.body(Document[_SegmentUpdate]).data
    expect_type(data.type, "segment")
    expect_id(data.id, ctx.path_params["id"])
    _check_attributes(data.attributes, ALLOWED_ON_UPDATE)
    row = rules.update_segment(ctx.db, ctx.account_id, ctx.now(), ctx.path_params["id"], dict(data.attributes))
    ctx.services.work_signal.set()
    return single_document(segment_resource(ctx, row), links={"self": ctx.url})


@api.delete("/api/segments/{id}", "delete_segment", scopes=("segments:write",), rate=DELETE, success=204)
def delete_segment(ctx: Ctx) -> None:
    """Delete Segment."""
    rules.delete_segment(ctx.db, ctx.account_id, ctx.path_params["id"])


# --------------------------------------------------------------------------- tags and flow triggers

RELATED.declare(api, path="/api/segments/{id}", scope="segments", rate=SLOW)


# --------------------------------------------------------------------------- members


@api.get("/api/segments/{id}/profiles", "get_profiles_for_segment", scopes=("profiles:read", "segments:read"),
         rate=READ, query=QuerySpec(fields={"profile": MEMBER_FIELDS}, sort=("joined_group_at",), page=MEMBER_PAGE,
                                    filters=MEMBER_FILTERS, additional_fields=PROFILE_ADDITIONAL))
def get_profiles_for_segment(ctx: Ctx) -> dict[str, Any]:
    """Get Profiles for Segment, each with the time it entered (`joined_group_at`)."""
    return MEMBERS.profiles(ctx)


@api.get("/api/segments/{id}/relationships/profiles", "get_profile_ids_for_segment",
         scopes=("profiles:read", "segments:read"), rate=READ,
         query=QuerySpec(sort=("joined_group_at",), page=MEMBER_PAGE, filters=MEMBER_FILTERS))
def get_profile_ids_for_segment(ctx: Ctx) -> dict[str, Any]:
    """Get Profile IDs for Segment."""
    return MEMBERS.profile_ids(ctx)
