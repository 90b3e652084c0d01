"""Tags category: tags, tag groups, and tags on lists, segments, campaigns and flows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Row

from menura.api.bodies import expect_id, expect_type
from menura.api.listing import Listing, attach_includes, list_resources, relationship_ids
from menura.api.operation import Category, Ctx, Handler, S
from menura.api.related import TAG, tag_resource
from menura.api.strict_bodies import Envelope, ResourceIdentifier
from menura.domain import tags as rules
from menura.jsonapi import errors
from menura.jsonapi.documents import ResourceType, identifier, resource_object, single_document
from menura.jsonapi.filters import FilterField, boolean_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.jsonapi.revisions import changed
from menura.store import tags as store

api = Category("Tags")

TAG_GROUP = ResourceType("tag-group", "tag-groups", ("tags",))
TAG_FIELDS = {"tag": ("id", "name")}
GROUP_FIELDS = {"tag-group": ("default", "exclusive", "id", "name")}
READ, WRITE = ("tags:read",), ("tags:read", "tags:write")


def _name_filter(column: Any) -> FilterField:
    return FilterField("string", single=frozenset({"contains", "ends-with", "equals", "starts-with"}),
                       list=frozenset({"equals"}), column=column)


TAG_FILTERS = {"name": _name_filter(store.TAG_COLUMNS["name"])}
GROUP_FILTERS = {
    "name": _name_filter(store.GROUP_COLUMNS["name"]),
    "exclusive": boolean_field(store.GROUP_COLUMNS["exclusive"]),
    "default": boolean_field(store.GROUP_COLUMNS["default"]),
}


# --------------------------------------------------------------------------- request bodies


class TagGroupLinkage(msgspec.Struct, forbid_unknown_fields=True):
    data: ResourceIdentifier | None = None


class TagRelationships(msgspec.Struct, forbid_unknown_fields=True):
    tag_group: TagGroupLinkage | None = msgspec.field(default=None, name="tag-group")


class NameAttributes(msgspec.Struct, forbid_unknown_fields=True):
    name: str


class NewTag(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    attributes: NameAttributes
    relationships: TagRelationships | None = None


class TagChange(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    id: str
    attributes: NameAttributes


class NewGroupAttributes(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    exclusive: bool | None = None


class NewGroup(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    attributes: NewGroupAttributes


class GroupChangeAttributes(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    return_fields: list[str] | None = None  # in Klaviyo's schema; a 204 returns nothing, so unused
    # Named here only to answer with why they can't be sent.
    exclusive: Any = msgspec.UNSET
    default: Any = msgspec.UNSET


class GroupChange(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    id: str
    attributes: GroupChangeAttributes


def _expect_path_id(ctx: Ctx, body_id: str) -> str:
    expect_id(body_id, ctx.path_params["id"])
    return body_id


# --------------------------------------------------------------------------- serialization


def _group_object(ctx: Ctx, row: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    attributes = {"name": row.name, "exclusive": bool(row.exclusive), "default": bool(row.default)}
    return resource_object(TAG_GROUP, row.id, attributes, ctx.links, fields=ctx.query.fields_for("tag-group"))


def _include_tag_groups(conn: Connection, ctx: Ctx,
                        rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    groups = {g.id: g for g in store.groups_by_ids(conn, ctx.account_id, {r.tag_group_id for r in rows})}
    linkage = {r.id: identifier(TAG_GROUP.type, r.tag_group_id) for r in rows}
    order = dict.fromkeys(r.tag_group_id for r in rows)
    return linkage, [_group_object(ctx, groups[gid]) for gid in order if gid in groups]


TAG_INCLUDES = {"tag-group": _include_tag_groups}


def _load_tag(ctx: Ctx, conn: Connection) -> Row[Any]:
    row = store.get_tag(conn, ctx.account_id, ctx.path_params["id"])
    if row is None:
        raise rules.tag_not_found(ctx.path_params["id"])
    return row


def _load_group(ctx: Ctx, conn: Connection) -> Row[Any]:
    row = store.get_group(conn, ctx.account_id, ctx.path_params["id"])
    if row is None:
        raise rules.group_not_found(ctx.path_params["id"])
    return row


# --------------------------------------------------------------------------- tags


@api.get("/api/tags", "get_tags", scopes=READ, rate=S,
         query=QuerySpec(fields={**TAG_FIELDS, **GROUP_FIELDS}, include=("tag-group",), sort=("id", "name"),
                         page=PageBounds(default=50, maximum=50), filters=TAG_FILTERS))
def get_tags(ctx: Ctx) -> dict[str, Any]:
    """Get Tags."""
    listing = Listing(store.tag_select(ctx.account_id), store.TAG_COLUMNS["id"], store.TAG_COLUMNS)
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: tag_resource(ctx, row), includes=TAG_INCLUDES)


@api.post("/api/tags", "create_tag", scopes=WRITE, rate=S, success=201, query=QuerySpec(fields=TAG_FIELDS))
def create_tag(ctx: Ctx) -> dict[str, Any]:
    """Create Tag (in the default tag group unless one is given)."""
    data = ctx.body(Envelope[NewTag]).data
    expect_type(data.type, TAG.type)
    group_id = None
    linkage = data.relationships.tag_group if data.relationships else None
    if linkage is not None and linkage.data is not None:
        expect_type(linkage.data.type, TAG_GROUP.type, "/data/relationships/tag-group/data/type")
        group_id = linkage.data.id
    row = rules.create_tag(ctx.db, ctx.account_id, ctx.now(), name=data.attributes.name, group_id=group_id)
    return single_document(tag_resource(ctx, row))


@api.get("/api/tags/{id}", "get_tag", scopes=READ, rate=S,
         query=QuerySpec(fields={**TAG_FIELDS, **GROUP_FIELDS}, include=("tag-group",)))
def get_tag(ctx: Ctx) -> dict[str, Any]:
    """Get Tag."""
    with ctx.db.read() as conn:
        row = _load_tag(ctx, conn)
        data = tag_resource(ctx, row)
        included = attach_includes(ctx, conn, [row], [data], TAG_INCLUDES)
    return single_document(data, included, links={"self": ctx.url})


@api.patch("/api/tags/{id}", "update_tag", scopes=WRITE, rate=S)
def update_tag(ctx: Ctx) -> None:
    """Update Tag (its name only)."""
    data = ctx.body(Envelope[TagChange]).data
    expect_type(data.type, TAG.type)
    tag_id = _expect_path_id(ctx, data.id)
    rules.rename_tag(ctx.db, ctx.account_id, ctx.now(), tag_id, data.attributes.name)


@api.delete("/api/tags/{id}", "delete_tag", scopes=WRITE, rate=S)
def delete_tag(ctx: Ctx) -> None:
    """Delete Tag, and its associations."""
    rules.delete_tag(ctx.db, ctx.account_id, ctx.now(), ctx.path_params["id"])


@api.get("/api/tags/{id}/tag-group", "get_tag_group_for_tag", scopes=READ, rate=S,
         query=QuerySpec(fields=GROUP_FIELDS))
def get_tag_group_for_tag(ctx: Ctx) -> dict[str, Any]:
    """Get Tag Group for Tag."""
    with ctx.db.read() as conn:
        tag = _load_tag(ctx, conn)
        group = store.get_group(conn, ctx.account_id, tag.tag_group_id)
    assert group is not None  # a tag's group outlives it
    return single_document(_group_object(ctx, group), links={"self": ctx.url})


@api.get("/api/tags/{id}/relationships/tag-group", "get_tag_group_id_for_tag", scopes=READ, rate=S)
def get_tag_group_id_for_tag(ctx: Ctx) -> dict[str, Any]:
    """Get Tag Group ID for Tag."""
    with ctx.db.read() as conn:
        tag = _load_tag(ctx, conn)
    return single_document(identifier(TAG_GROUP.type, tag.tag_group_id), links={"self": ctx.url})


# --------------------------------------------------------------------------- tag groups


@api.get("/api/tag-groups", "get_tag_groups", scopes=READ, rate=S,
         query=QuerySpec(fields=GROUP_FIELDS, sort=("id", "name"), page=PageBounds(default=25, maximum=25),
                         filters=GROUP_FILTERS))
def get_tag_groups(ctx: Ctx) -> dict[str, Any]:
    """Get Tag Groups (the default group is always among them)."""
    rules.ensure_default_group(ctx.db, ctx.account_id, ctx.now())
    listing = Listing(store.group_select(ctx.account_id), store.GROUP_COLUMNS["id"],
                      {"id": store.GROUP_COLUMNS["id"], "name": store.GROUP_COLUMNS["name"]})
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: _group_object(ctx, row))


@api.post("/api/tag-groups", "create_tag_group", scopes=WRITE, rate=S, success=201,
          query=QuerySpec(fields=GROUP_FIELDS))
def create_tag_group(ctx: Ctx) -> dict[str, Any]:
    """Create Tag Group."""
    data = ctx.body(Envelope[NewGroup]).data
    expect_type(data.type, TAG_GROUP.type)
    row = rules.create_group(ctx.db, ctx.account_id, ctx.now(), name=data.attributes.name,
                             exclusive=bool(data.attributes.exclusive))
    return single_document(_group_object(ctx, row))


@api.get("/api/tag-groups/{id}", "get_tag_group", scopes=READ, rate=S, query=QuerySpec(fields=GROUP_FIELDS))
def get_tag_group(ctx: Ctx) -> dict[str, Any]:
    """Get Tag Group."""
    with ctx.db.read() as conn:
        row = _load_group(ctx, conn)
    return single_document(_group_object(ctx, row), links={"self": ctx.url})


def _group_write_reply(ctx: Ctx, group: Row[Any]) -> dict[str, Any] | None:
    """Revisions before the change answer a tag-group write with the group itself."""
    if changed(ctx.revision, "tag_group_writes_no_content"):
        return None
    return single_document(_group_object(ctx, group), links={"self": ctx.links.resource(TAG_GROUP, group.id)})


@api.patch("/api/tag-groups/{id}", "update_tag_group", scopes=WRITE, rate=S)
def update_tag_group(ctx: Ctx) -> dict[str, Any] | None:
    """Update Tag Group (its name only)."""
    data = ctx.body(Envelope[GroupChange]).data
    expect_type(data.type, TAG_GROUP.type)
    group_id = _expect_path_id(ctx, data.id)
    for name in ("exclusive", "default"):
        if getattr(data.attributes, name) is not msgspec.UNSET:
            raise errors.invalid(f"A tag group's '{name}' value cannot be changed.",
                                 pointer=f"/data/attributes/{name}")
    rules.rename_group(ctx.db, ctx.account_id, ctx.now(), group_id, data.attributes.name)
    with ctx.db.read() as conn:
        return _group_write_reply(ctx, _load_group(ctx, conn))


@api.delete("/api/tag-groups/{id}", "delete_tag_group", scopes=WRITE, rate=S)
def delete_tag_group(ctx: Ctx) -> dict[str, Any] | None:
    """Delete Tag Group, with its tags and their associations."""
    with ctx.db.read() as conn:
        group = _load_group(ctx, conn)
    rules.delete_group(ctx.db, ctx.account_id, ctx.now(), ctx.path_params["id"])
    return _group_write_reply(ctx, group)


@api.get("/api/tag-groups/{id}/tags", "get_tags_for_tag_group", scopes=READ, rate=S,
         query=QuerySpec(fields=TAG_FIELDS))
def get_tags_for_tag_group(ctx: Ctx) -> dict[str, Any]:
    """Get Tags for Tag Group (all of them: a group holds at most the account's 500 tags)."""
    with ctx.db.read() as conn:
        group = _load_group(ctx, conn)
        rows = store.tags_in_group(conn, ctx.account_id, group.id)
    return {"data": [tag_resource(ctx, row) for row in rows], "links": {"self": ctx.url}}


@api.get("/api/tag-groups/{id}/relationships/tags", "get_tag_ids_for_tag_group", scopes=READ, rate=S)
def get_tag_ids_for_tag_group(ctx: Ctx) -> dict[str, Any]:
    """Get Tag IDs for Tag Group."""
    with ctx.db.read() as conn:
        group = _load_group(ctx, conn)
        rows = store.tags_in_group(conn, ctx.account_id, group.id)
    return relationship_ids(ctx, TAG.type, [row.id for row in rows])


# --------------------------------------------------------------------------- tags on other resources


def _declare_tagged(relationship: str, resource_type: str, scope: str,
                    get_id: str, add_id: str, remove_id: str) -> None:
    """The three operations of /api/tags/{id}/relationships/<relationship>."""
    path = f"/api/tags/{{id}}/relationships/{relationship}"

    def list_ids(ctx: Ctx) -> dict[str, Any]:
        with ctx.db.read() as conn:
            _load_tag(ctx, conn)
            found = store.assigned_ids(conn, ctx.account_id, ctx.path_params["id"], resource_type)
        return relationship_ids(ctx, resource_type, found)

    def add(ctx: Ctx) -> None:
        rules.tag_resources(ctx.db, ctx.account_id, ctx.now(), ctx.path_params["id"], resource_type,
                            _identifiers(ctx, resource_type))

    def remove(ctx: Ctx) -> None:
        rules.untag_resources(ctx.db, ctx.account_id, ctx.now(), ctx.path_params["id"], resource_type,
                              _identifiers(ctx, resource_type))

    _with_doc(list_ids, f"Get {resource_type.title()} IDs for Tag.")
    _with_doc(add, f"Tag {relationship.title()}.")
    _with_doc(remove, f"Remove Tag from {relationship.title()}.")
    api.get(path, get_id, scopes=(f"{scope}:read", "tags:read"), rate=S)(list_ids)
    api.post(path, add_id, scopes=(f"{scope}:write", "tags:write"), rate=S)(add)
    api.delete(path, remove_id, scopes=(f"{scope}:write", "tags:write"), rate=S)(remove)


def _identifiers(ctx: Ctx, resource_type: str) -> list[str]:
    """The ids of a `{"data": [{"type", "id"}, ...]}` body, in order, each of the expected type."""
    items = ctx.body(Envelope[list[ResourceIdentifier]]).data
    for index, item in enumerate(items):
        expect_type(item.type, resource_type, f"/data/{index}/type")
    return [item.id for item in items]


def _with_doc(handler: Handler, doc: str) -> None:
    handler.__doc__ = doc


_declare_tagged("flows", "flow", "flows", "get_flow_ids_for_tag", "tag_flows", "remove_tag_from_flows")
_declare_tagged("campaigns", "campaign", "campaigns", "get_campaign_ids_for_tag", "tag_campaigns",
                "remove_tag_from_campaigns")
_declare_tagged("lists", "list", "lists", "get_list_ids_for_tag", "tag_lists", "remove_tag_from_lists")
_declare_tagged("segments", "segment", "segments", "get_segment_ids_for_tag", "tag_segments",
                "remove_tag_from_segments")
