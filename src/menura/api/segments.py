"""Segments category: the 11 operations on segments, their tags, members and flow triggers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any

import msgspec
from sqlalchemy import Connection, Row, false, select
from sqlalchemy.sql.elements import ColumnElement

from menura.api.listing import Listing, attach_includes, list_resources
from menura.api.lists import MEMBER_FILTERS as LIST_MEMBER_FILTERS
from menura.api.lists import Document, expect_id, expect_type, missing
from menura.api.operation import Category, Ctx, Reply, tier
from menura.api.profiles import ADDITIONAL as PROFILE_ADDITIONAL
from menura.api.profiles import PROFILE_FIELDS, profile_resources
from menura.api.related import flows_for, include_flows, include_tags, tag_resource
from menura.domain import identity
from menura.domain import segments as rules
from menura.domain import tags as tag_rules
from menura.engine.segments import live  # noqa: F401  (registers the live hooks in this process)
from menura.jsonapi import errors
from menura.jsonapi.documents import ResourceType, identifier, resource_object, single_document
from menura.jsonapi.filters import FilterField, boolean_field, datetime_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import segments as store
from menura.store.profile_tables import profiles as profiles_table
from menura.store.profile_tables import push_tokens as push_tokens_table
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
TAG_FIELDS = ("id", "name")
FLOW_FIELDS = ("archived", "created", "id", "name", "status", "trigger_type", "updated")
MEMBER_FIELDS = tuple(sorted((*PROFILE_FIELDS, "joined_group_at")))
MEMBER_PAGE = PageBounds(default=20, maximum=100)

# Flows triggered by a segment, provided by the flows category once it exists:
# (ctx, connection, segment id) -> flow resource objects (type "flow"), in a stable order.
FlowsTriggeredBy = Callable[[Ctx, Connection, str], list[dict[str, Any]]]
FLOWS_TRIGGERED_BY_SEGMENT: list[FlowsTriggeredBy] = []


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


# `_kx` tokens are checked against the secret and account of the request being served.
_kx_scope: ContextVar[tuple[bytes, str] | None] = ContextVar("segments_kx_scope", default=None)


def _kx_member(_op: str, value: Any) -> ColumnElement[bool]:
    scope = _kx_scope.get()
    profile_id = identity.kx_profile_id(scope[0], scope[1], str(value)) if scope else None
    return members_table.c.profile_id == profile_id if profile_id else false()


def _push_token_member(_op: str, value: Any) -> ColumnElement[bool]:
    tokens = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    holders = select(push_tokens_table.c.profile_id).where(push_tokens_table.c.token.in_(tokens))
    return members_table.c.profile_id.in_(holders)


MEMBER_FILTERS: dict[str, FilterField] = {
    "profile_id": FilterField("string", list=frozenset({"any", "equals"}), column=members_table.c.profile_id),
    # email and phone_number read the profiles table, which the members listing joins
    "email": LIST_MEMBER_FILTERS["email"],
    "phone_number": LIST_MEMBER_FILTERS["phone_number"],
    "push_token": FilterField("string", single=frozenset({"equals"}), list=frozenset({"any"}),
                              column=_push_token_member),
    "_kx": FilterField("string", single=frozenset({"equals"}), column=_kx_member),
    "joined_group_at": datetime_field(members_table.c.joined_at,
                                      ops=("greater-or-equal", "greater-than", "less-or-equal", "less-than")),
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


INCLUDES = {"tags": include_tags("segment"), "flow-triggers": include_flows(FLOWS_TRIGGERED_BY_SEGMENT)}


def _segment_or_404(conn: Connection, ctx: Ctx) -> Row[Any]:
    return rules.get_segment(conn, ctx.account_id, ctx.path_params["id"])


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
        _limit_costly(ctx, "profile_count", PROFILE_COUNT_RATE)
    with ctx.db.read() as conn:
        row = _segment_or_404(conn, ctx)
        if ctx.query.wants("segment", "profile_count"):
            count = store.member_counts(conn, [row.id]).get(row.id, 0)
        data = [segment_resource(ctx, row, profile_count=count)]
        included = attach_includes(ctx, conn, [row], data, INCLUDES)
    return single_document(data[0], included, links={"self": ctx.url})


def _limit_costly(ctx: Ctx, label: str, rate: Any) -> None:
    decision = ctx.services.rate_limiter.hit(f"{ctx.account_id}:{ctx.operation.operation_id}:{label}", rate,
                                             time.time())
    if not decision.allowed:
        err = errors.throttled(decision.retry_after)
        err.headers.update(decision.headers)
        raise err


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


# --------------------------------------------------------------------------- tags


def _tags_of_segment(ctx: Ctx) -> list[Row[Any]]:
    with ctx.db.read() as conn:
        row = _segment_or_404(conn, ctx)
        tags = tag_rules.tags_of(conn, ctx.account_id, "segment", [row.id]).get(row.id, [])
    return sorted(tags, key=lambda tag: (tag.name, tag.id))


@api.get("/api/segments/{id}/tags", "get_tags_for_segment", scopes=("segments:read", "tags:read"), rate=SLOW,
         query=QuerySpec(fields={"tag": TAG_FIELDS}))
def get_tags_for_segment(ctx: Ctx) -> dict[str, Any]:
    """Get Tags for Segment."""
    return {"data": [tag_resource(ctx, tag) for tag in _tags_of_segment(ctx)], "links": {"self": ctx.url}}


@api.get("/api/segments/{id}/relationships/tags", "get_tag_ids_for_segment", scopes=("segments:read", "tags:read"),
         rate=SLOW)
def get_tag_ids_for_segment(ctx: Ctx) -> dict[str, Any]:
    """Get Tag IDs for Segment."""
    return {"data": [identifier("tag", tag.id) for tag in _tags_of_segment(ctx)], "links": {"self": ctx.url}}


# --------------------------------------------------------------------------- flow triggers


@api.get("/api/segments/{id}/flow-triggers", "get_flows_triggered_by_segment",
         scopes=("flows:read", "segments:read"), rate=SLOW, query=QuerySpec(fields={"flow": FLOW_FIELDS}))
def get_flows_triggered_by_segment(ctx: Ctx) -> dict[str, Any]:
    """Get Flows Triggered by Segment."""
    with ctx.db.read() as conn:
        row = _segment_or_404(conn, ctx)
        flows = flows_for(ctx, conn, FLOWS_TRIGGERED_BY_SEGMENT, row.id)
    return {"data": flows, "links": {"self": ctx.url}}


@api.get("/api/segments/{id}/relationships/flow-triggers", "get_ids_for_flows_triggered_by_segment",
         scopes=("flows:read", "segments:read"), rate=SLOW)
def get_ids_for_flows_triggered_by_segment(ctx: Ctx) -> dict[str, Any]:
    """Get IDs for Flows Triggered by Segment."""
    with ctx.db.read() as conn:
        row = _segment_or_404(conn, ctx)
        flows = flows_for(ctx, conn, FLOWS_TRIGGERED_BY_SEGMENT, row.id)
    return {"data": [identifier("flow", flow["id"]) for flow in flows], "links": {"self": ctx.url}}


# --------------------------------------------------------------------------- members


def _members(ctx: Ctx, conn: Connection, serialize: Callable[[Row[Any]], dict[str, Any]]) -> dict[str, Any]:
    """A page of the segment's members, first entered first (`sort=-joined_group_at` reverses)."""
    row = _segment_or_404(conn, ctx)
    stmt = (select(members_table.c.profile_id, members_table.c.joined_at)
            .join(profiles_table, profiles_table.c.id == members_table.c.profile_id)
            .where(members_table.c.segment_id == row.id, profiles_table.c.account_id == ctx.account_id))
    listing = Listing(select=stmt, id_column=members_table.c.profile_id,
                      sort_columns={"joined_group_at": members_table.c.joined_at}, default_sort="joined_group_at")
    token = _kx_scope.set((ctx.services.secret, ctx.account_id))
    try:
        return list_resources(ctx, conn, listing, serialize)
    finally:
        _kx_scope.reset(token)


@api.get("/api/segments/{id}/profiles", "get_profiles_for_segment", scopes=("profiles:read", "segments:read"),
         rate=READ, query=QuerySpec(fields={"profile": MEMBER_FIELDS}, sort=("joined_group_at",), page=MEMBER_PAGE,
                                    filters=MEMBER_FILTERS, additional_fields=PROFILE_ADDITIONAL))
def get_profiles_for_segment(ctx: Ctx) -> dict[str, Any]:
    """Get Profiles for Segment, each with the time it entered (`joined_group_at`)."""
    joined: dict[str, Any] = {}

    def remember(member: Row[Any]) -> dict[str, Any]:
        joined[member.profile_id] = member.joined_at
        return {"id": member.profile_id}

    with ctx.db.read() as conn:
        document = _members(ctx, conn, remember)
        resources = profile_resources(ctx, conn, [item["id"] for item in document["data"]])
    assert ctx.query is not None
    fields = ctx.query.fields_for("profile")
    for resource in resources:
        if fields is None or "joined_group_at" in fields:
            resource["attributes"]["joined_group_at"] = joined[resource["id"]].isoformat()
    document["data"] = resources
    return document


@api.get("/api/segments/{id}/relationships/profiles", "get_profile_ids_for_segment",
         scopes=("profiles:read", "segments:read"), rate=READ,
         query=QuerySpec(sort=("joined_group_at",), page=MEMBER_PAGE, filters=MEMBER_FILTERS))
def get_profile_ids_for_segment(ctx: Ctx) -> dict[str, Any]:
    """Get Profile IDs for Segment."""
    with ctx.db.read() as conn:
        return _members(ctx, conn, lambda member: identifier("profile", member.profile_id))
