"""Lists category: the 13 operations on lists, their tags, members and flow triggers."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Connection, Row

from menura.api.bodies import Document, expect_id, expect_type, iso, missing
from menura.api.group_members import EMAIL_FILTER, MEMBER_FIELDS, MEMBER_PAGE, PHONE_FILTER, GroupMembers
from menura.api.listing import Listing, attach_includes, list_resources
from menura.api.operation import Category, Ctx, Reply, tier
from menura.api.profiles import ADDITIONAL as PROFILE_ADDITIONAL
from menura.api.related import FLOW_FIELDS, TAG_FIELDS, FlowProvider, TagsAndFlows
from menura.domain import lists as rules
from menura.jsonapi.documents import ResourceType, resource_object, single_document
from menura.jsonapi.filters import FilterField, datetime_field, id_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import lists as store
from menura.store.list_tables import list_members as members_table
from menura.store.list_tables import lists as lists_table

api = Category("Lists")
LIST = ResourceType("list", "lists", relationships=("profiles", "tags", "flow-triggers"))

READ = tier(75, 750)
WRITE = tier(10, 150)
SLOW = tier(3, 60)

LIST_FIELDS = ("created", "id", "name", "opt_in_process", "updated")

# Flows triggered by a list, provided by the flows category once it exists:
# (ctx, connection, list id) -> flow resource objects (type "flow"), in a stable order.
FLOWS_TRIGGERED_BY_LIST: list[FlowProvider] = []

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


def _list_or_404(conn: Connection, ctx: Ctx) -> Row[Any]:
    return rules.get_list(conn, ctx.account_id, ctx.path_params["id"])


RELATED = TagsAndFlows("list", _list_or_404, FLOWS_TRIGGERED_BY_LIST)
INCLUDES = RELATED.includes()


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


# --------------------------------------------------------------------------- tags and flow triggers

RELATED.declare(api, path="/api/lists/{id}", scope="lists", rate=SLOW)


# --------------------------------------------------------------------------- members

MEMBERS = GroupMembers(profile_id=members_table.c.profile_id, group_id=members_table.c.list_id,
                       joined=members_table.c.joined_group_at, load_group=_list_or_404)
MEMBER_FILTERS: dict[str, FilterField] = {
    "email": EMAIL_FILTER,
    "phone_number": PHONE_FILTER,
    "push_token": MEMBERS.push_token_filter(),
    "_kx": MEMBERS.kx_filter(),
    "joined_group_at": MEMBERS.joined_filter(),
}


@api.get("/api/lists/{id}/profiles", "get_profiles_for_list", scopes=("lists:read", "profiles:read"), rate=READ,
         query=QuerySpec(fields={"profile": MEMBER_FIELDS}, sort=("joined_group_at",), page=MEMBER_PAGE,
                         filters=MEMBER_FILTERS, additional_fields=PROFILE_ADDITIONAL))
def get_profiles_for_list(ctx: Ctx) -> dict[str, Any]:
    """Get Profiles for List, each with the time it joined (`joined_group_at`)."""
    return MEMBERS.profiles(ctx)


@api.get("/api/lists/{id}/relationships/profiles", "get_profile_ids_for_list", scopes=("lists:read", "profiles:read"),
         rate=READ, query=QuerySpec(sort=("joined_group_at",), page=MEMBER_PAGE, filters=MEMBER_FILTERS))
def get_profile_ids_for_list(ctx: Ctx) -> dict[str, Any]:
    """Get Profile IDs for List."""
    return MEMBERS.profile_ids(ctx)


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
