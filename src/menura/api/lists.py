"""Lists category: the 13 operations on lists, their tags, members and flow triggers."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import msgspec
from sqlalchemy import Connection, Row, false, select
from sqlalchemy.sql.elements import ColumnElement

from menura.api.bodies import Document, expect_id, expect_type, iso, missing
from menura.api.listing import Listing, attach_includes, list_resources
from menura.api.operation import Category, Ctx, Reply, tier
from menura.api.profiles import ADDITIONAL as PROFILE_ADDITIONAL
from menura.api.profiles import PROFILE_FIELDS, profile_resources
from menura.api.related import flows_for, include_flows, include_tags, tag_resource
from menura.domain import identity
from menura.domain import lists as rules
from menura.domain import tags as tag_rules
from menura.jsonapi.documents import ResourceType, identifier, resource_object, single_document
from menura.jsonapi.errors import ApiError
from menura.jsonapi.filters import FilterField, datetime_field, id_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import lists as store
from menura.store.list_tables import list_members as members_table
from menura.store.list_tables import lists as lists_table
from menura.store.profile_tables import profiles as profiles_table
from menura.store.profile_tables import push_tokens as push_tokens_table

api = Category("Lists")
LIST = ResourceType("list", "lists", relationships=("profiles", "tags", "flow-triggers"))

READ = tier(75, 750)
WRITE = tier(10, 150)
SLOW = tier(3, 60)

LIST_FIELDS = ("created", "id", "name", "opt_in_process", "updated")
TAG_FIELDS = ("id", "name")
FLOW_FIELDS = ("archived", "created", "id", "name", "status", "trigger_type", "updated")
MEMBER_FIELDS = tuple(sorted((*PROFILE_FIELDS, "joined_group_at")))

# Flows triggered by a list, provided by the flows category once it exists:
# (ctx, connection, list id) -> flow resource objects (type "flow"), in a stable order.
FlowsTriggeredBy = Callable[[Ctx, Connection, str], list[dict[str, Any]]]
FLOWS_TRIGGERED_BY_LIST: list[FlowsTriggeredBy] = []

LIST_FILTERS: dict[str, FilterField] = {
    "id": id_field(lists_table.c.id),
    "name": id_field(lists_table.c.name),
    "created": datetime_field(lists_table.c.created, ops=("greater-than",)),
    "updated": datetime_field(lists_table.c.updated, ops=("greater-than",)),
}
LIST_SORTS = {"created": lists_table.c.created, "id": lists_table.c.id, "name": lists_table.c.name,
              "updated": lists_table.c.updated}


# --------------------------------------------------------------------------- serialization


def list_attributes(row: Row[Any]) -> dict[str, Any]:
    return {"name": row.name, "created": iso(row.created), "updated": iso(row.updated),
            "opt_in_process": row.opt_in_process}


def list_resource(ctx: Ctx, row: Row[Any], *, profile_count: int | None = None) -> dict[str, Any]:
    """A list resource object, honouring `fields[list]`; used by other categories' includes too."""
    assert ctx.query is not None
    attributes = list_attributes(row)
    if profile_count is not None:
        attributes["profile_count"] = profile_count
    return resource_object(LIST, row.id, attributes, ctx.links, fields=ctx.query.fields_for("list"))


INCLUDES = {"tags": include_tags("list"), "flow-triggers": include_flows(FLOWS_TRIGGERED_BY_LIST)}


def _list_or_404(conn: Connection, ctx: Ctx) -> Row[Any]:
    return rules.get_list(conn, ctx.account_id, ctx.path_params["id"])


# --------------------------------------------------------------------------- lists


@api.get("/api/lists", "get_lists", scopes=("lists:read",), rate=READ,
         query=QuerySpec(fields={"list": LIST_FIELDS, "tag": TAG_FIELDS, "flow": FLOW_FIELDS},
                         include=("flow-triggers", "tags"), sort=("created", "id", "name", "updated"),
                         page=PageBounds(default=10, maximum=10), filters=LIST_FILTERS))
def get_lists(ctx: Ctx) -> dict[str, Any]:
    """Get Lists."""
    listing = Listing(select=store.lists_select(ctx.account_id), id_column=lists_table.c.id,
                      sort_columns=LIST_SORTS)
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: list_resource(ctx, row), includes=INCLUDES)


class _ListAttributes(msgspec.Struct):
    name: Any = msgspec.UNSET
    opt_in_process: Any = None


class _ListCreate(msgspec.Struct):
    type: str
    attributes: _ListAttributes


@api.post("/api/lists", "create_list", scopes=("lists:write",), rate=WRITE, success=201,
          query=QuerySpec(fields={"list": LIST_FIELDS}))
def create_list(ctx: Ctx) -> Reply:
    """Create List."""
    data = ctx.body(Document[_ListCreate]).data
    expect_type(data.type, "list")
    if data.attributes.name is msgspec.UNSET:
        raise missing("/data/attributes/name")
    row = rules.create_list(ctx.db, ctx.account_id, ctx.now(), name=data.attributes.name,
                            opt_in_process=data.attributes.opt_in_process)
    resource = list_resource(ctx, row)
    return Reply(201, single_document(resource, links={"self": resource["links"]["self"]}))


@api.get("/api/lists/{id}", "get_list", scopes=("lists:read",), rate=READ,
         query=QuerySpec(fields={"list": (*LIST_FIELDS, "profile_count"), "tag": TAG_FIELDS, "flow": FLOW_FIELDS},
                         include=("flow-triggers", "tags"), additional_fields={"list": ("profile_count",)}))
def get_list(ctx: Ctx) -> dict[str, Any]:
    """Get List (with `additional-fields[list]=profile_count`)."""
    assert ctx.query is not None
    with ctx.db.read() as conn:
        row = _list_or_404(conn, ctx)
        count = None
        if ctx.query.wants("list", "profile_count"):
            count = store.member_counts(conn, [row.id])[row.id]
        data = [list_resource(ctx, row, profile_count=count)]
        included = attach_includes(ctx, conn, [row], data, INCLUDES)
    return single_document(data[0], included, links={"self": ctx.url})


class _ListUpdate(msgspec.Struct):
    type: str
    id: str
    attributes: dict[str, Any]


@api.patch("/api/lists/{id}", "update_list", scopes=("lists:write",), rate=WRITE,
           query=QuerySpec(fields={"list": LIST_FIELDS}))
def update_list(ctx: Ctx) -> dict[str, Any]:
    """Update List (name, opt-in process)."""
    data = ctx.body(Document[_ListUpdate]).data
    expect_type(data.type, "list")
    expect_id(data.id, ctx.path_params["id"])
    changes = {k: v for k, v in data.attributes.items() if k in ("name", "opt_in_process")}
    row = rules.update_list(ctx.db, ctx.account_id, ctx.now(), ctx.path_params["id"], changes)
    return single_document(list_resource(ctx, row), links={"self": ctx.url})


@api.delete("/api/lists/{id}", "delete_list", scopes=("lists:write",), rate=WRITE, success=204)
def delete_list(ctx: Ctx) -> None:
    """Delete List."""
    rules.delete_list(ctx.db, ctx.account_id, ctx.path_params["id"])


# --------------------------------------------------------------------------- tags


def _tags_of_list(ctx: Ctx) -> list[Row[Any]]:
    with ctx.db.read() as conn:
        row = _list_or_404(conn, ctx)
        tags = tag_rules.tags_of(conn, ctx.account_id, "list", [row.id]).get(row.id, [])
    return sorted(tags, key=lambda tag: (tag.name, tag.id))


@api.get("/api/lists/{id}/tags", "get_tags_for_list", scopes=("lists:read", "tags:read"), rate=SLOW,
         query=QuerySpec(fields={"tag": TAG_FIELDS}))
def get_tags_for_list(ctx: Ctx) -> dict[str, Any]:
    """Get Tags for List."""
    return {"data": [tag_resource(ctx, tag) for tag in _tags_of_list(ctx)], "links": {"self": ctx.url}}


@api.get("/api/lists/{id}/relationships/tags", "get_tag_ids_for_list", scopes=("lists:read", "tags:read"),
         rate=SLOW)
def get_tag_ids_for_list(ctx: Ctx) -> dict[str, Any]:
    """Get Tag IDs for List."""
    return {"data": [identifier("tag", tag.id) for tag in _tags_of_list(ctx)], "links": {"self": ctx.url}}


# --------------------------------------------------------------------------- flow triggers


@api.get("/api/lists/{id}/flow-triggers", "get_flows_triggered_by_list", scopes=("flows:read", "lists:read"),
         rate=SLOW, query=QuerySpec(fields={"flow": FLOW_FIELDS}))
def get_flows_triggered_by_list(ctx: Ctx) -> dict[str, Any]:
    """Get Flows Triggered by List."""
    with ctx.db.read() as conn:
        row = _list_or_404(conn, ctx)
        flows = flows_for(ctx, conn, FLOWS_TRIGGERED_BY_LIST, row.id)
    return {"data": flows, "links": {"self": ctx.url}}


@api.get("/api/lists/{id}/relationships/flow-triggers", "get_ids_for_flows_triggered_by_list",
         scopes=("flows:read", "lists:read"), rate=SLOW)
def get_ids_for_flows_triggered_by_list(ctx: Ctx) -> dict[str, Any]:
    """Get IDs for Flows Triggered by List."""
    with ctx.db.read() as conn:
        row = _list_or_404(conn, ctx)
        flows = flows_for(ctx, conn, FLOWS_TRIGGERED_BY_LIST, row.id)
    return {"data": [identifier("flow", flow["id"]) for flow in flows], "links": {"self": ctx.url}}


# --------------------------------------------------------------------------- members

# `_kx` tokens are checked against the secret and account of the request being served.
_kx_scope: ContextVar[tuple[bytes, str] | None] = ContextVar("lists_kx_scope", default=None)


def _kx_member(_op: str, value: Any) -> ColumnElement[bool]:
    scope = _kx_scope.get()
    profile_id = identity.kx_profile_id(scope[0], scope[1], str(value)) if scope else None
    return members_table.c.profile_id == profile_id if profile_id else false()


def _push_token_member(_op: str, value: Any) -> ColumnElement[bool]:
    tokens = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    holders = select(push_tokens_table.c.profile_id).where(push_tokens_table.c.token.in_(tokens))
    return members_table.c.profile_id.in_(holders)


def _member_identifier(column: Any, normalize: Callable[[Any], str]) -> FilterField:
    def condition(_op: str, value: Any) -> ColumnElement[bool]:
        if isinstance(value, list | tuple):
            return column.in_([normalize(item) for item in value])
        return column == normalize(value)

    return FilterField("string", single=frozenset({"equals"}), list=frozenset({"any"}), column=condition)


def _normalized_email(value: Any) -> str:
    return str(value).strip().lower()


def _normalized_phone(value: Any) -> str:
    try:
        return identity.normalize_phone(str(value), pointer=None)
    except ApiError:
        return str(value)  # not a valid number: matches nothing


MEMBER_FILTERS: dict[str, FilterField] = {
    "email": _member_identifier(profiles_table.c.email, _normalized_email),
    "phone_number": _member_identifier(profiles_table.c.phone_number, _normalized_phone),
    "push_token": FilterField("string", single=frozenset({"equals"}), list=frozenset({"any"}),
                              column=_push_token_member),
    "_kx": FilterField("string", single=frozenset({"equals"}), column=_kx_member),
    "joined_group_at": datetime_field(members_table.c.joined_group_at,
                                      ops=("greater-or-equal", "greater-than", "less-or-equal", "less-than")),
}
MEMBER_PAGE = PageBounds(default=20, maximum=100)


def _members(ctx: Ctx, conn: Connection, serialize: Callable[[Row[Any]], dict[str, Any]]) -> dict[str, Any]:
    """A page of the list's members, joined-first by default (`sort=-joined_group_at` reverses)."""
    row = _list_or_404(conn, ctx)
    stmt = (select(members_table.c.profile_id, members_table.c.joined_group_at)
            .join(profiles_table, profiles_table.c.id == members_table.c.profile_id)
            .where(members_table.c.list_id == row.id, profiles_table.c.account_id == ctx.account_id))
    listing = Listing(select=stmt, id_column=members_table.c.profile_id,
                      sort_columns={"joined_group_at": members_table.c.joined_group_at},
                      default_sort="joined_group_at")
    token = _kx_scope.set((ctx.services.secret, ctx.account_id))
    try:
        return list_resources(ctx, conn, listing, serialize)
    finally:
        _kx_scope.reset(token)


@api.get("/api/lists/{id}/profiles", "get_profiles_for_list", scopes=("lists:read", "profiles:read"), rate=READ,
         query=QuerySpec(fields={"profile": MEMBER_FIELDS}, sort=("joined_group_at",), page=MEMBER_PAGE,
                         filters=MEMBER_FILTERS, additional_fields=PROFILE_ADDITIONAL))
def get_profiles_for_list(ctx: Ctx) -> dict[str, Any]:
    """Get Profiles for List, each with the time it joined (`joined_group_at`)."""
    joined: dict[str, Any] = {}

    def remember(member: Row[Any]) -> dict[str, Any]:
        joined[member.profile_id] = member.joined_group_at
        return {"id": member.profile_id}

    with ctx.db.read() as conn:
        document = _members(ctx, conn, remember)
        resources = profile_resources(ctx, conn, [item["id"] for item in document["data"]])
    assert ctx.query is not None
    fields = ctx.query.fields_for("profile")
    for resource in resources:
        if fields is None or "joined_group_at" in fields:
            resource["attributes"]["joined_group_at"] = iso(joined[resource["id"]])
    document["data"] = resources
    return document


@api.get("/api/lists/{id}/relationships/profiles", "get_profile_ids_for_list", scopes=("lists:read", "profiles:read"),
         rate=READ, query=QuerySpec(sort=("joined_group_at",), page=MEMBER_PAGE, filters=MEMBER_FILTERS))
def get_profile_ids_for_list(ctx: Ctx) -> dict[str, Any]:
    """Get Profile IDs for List."""
    with ctx.db.read() as conn:
        return _members(ctx, conn, lambda member: identifier("profile", member.profile_id))



class _ProfileIdentifier(msgspec.Struct):
    type: str
    id: str


def _member_ids(ctx: Ctx) -> list[str]:
    items = ctx.body(Document[list[_ProfileIdentifier]]).data
    for index, item in enumerate(items):
        expect_type(item.type, "profile", pointer=f"/data/{index}/type")
    return [item.id for item in items]


@api.post("/api/lists/{id}/relationships/profiles", "add_profiles_to_list",
          scopes=("lists:write", "profiles:write"), rate=WRITE, success=204)
def add_profiles_to_list(ctx: Ctx) -> None:
    """Add Profiles to List (consent unchanged)."""
    rules.add_profiles(ctx.db, ctx.account_id, ctx.now(), ctx.path_params["id"], _member_ids(ctx))


@api.delete("/api/lists/{id}/relationships/profiles", "remove_profiles_from_list",
            scopes=("lists:write", "profiles:write"), rate=WRITE, success=204)
def remove_profiles_from_list(ctx: Ctx) -> None:
    """Remove Profiles from List (consent unchanged)."""
    rules.remove_profiles(ctx.db, ctx.account_id, ctx.path_params["id"], _member_ids(ctx))
