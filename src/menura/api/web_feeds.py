"""Web Feeds category (5 operations)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from menura.api.bodies import expect_id
from menura.api.listing import Listing, list_resources
from menura.api.operation import Category, Ctx, Reply, tier
from menura.api.resource_data import ExistingResource, NewResource, Shape, read_data, reject_unknown
from menura.domain import web_feeds as rules
from menura.jsonapi.documents import ResourceType, resource_object, single_document
from menura.jsonapi.filters import FilterField, datetime_field, string_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import web_feeds as store
from menura.store.template_tables import web_feeds as feeds_table

api = Category("Web Feeds")
WEB_FEED = ResourceType("web-feed", "web-feeds")
FIELDS = {"web-feed": ("content_type", "created", "id", "name", "request_method", "status", "updated", "url")}
RATE = tier(1, 15)
_COMPARE = ("greater-or-equal", "greater-than", "less-or-equal", "less-than")
FILTERS: dict[str, FilterField] = {
    "name": string_field(feeds_table.c.name, single=("contains", "equals"), list=("any", "equals")),
    "created": datetime_field(feeds_table.c.created, ops=_COMPARE),
    "updated": datetime_field(feeds_table.c.updated, ops=_COMPARE),
}
_SORTS = ("created", "name", "updated")
_WRITABLE = ("name", "url", "request_method", "content_type")


def _data(ctx: Ctx, shape: type[Shape]) -> Shape:
    data = read_data(ctx, shape, "web-feed")
    reject_unknown(data.attributes, _WRITABLE)
    return data


def feed_resource(ctx: Ctx, row: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    attributes = {"name": row.name, "url": row.url, "request_method": row.request_method,
                  "content_type": row.content_type, "created": row.created.isoformat(),
                  "updated": row.updated.isoformat(), "status": row.status}
    return resource_object(WEB_FEED, row.id, attributes, ctx.links, fields=ctx.query.fields_for("web-feed"))


@api.get("/api/web-feeds", "get_web_feeds", scopes=("web-feeds:read",), rate=RATE,
         query=QuerySpec(fields=FIELDS, sort=_SORTS, page=PageBounds(default=5, maximum=20), filters=FILTERS))
def get_web_feeds(ctx: Ctx) -> dict[str, Any]:
    """Get Web Feeds."""
    listing = Listing(select=store.feeds_select(ctx.account_id), id_column=feeds_table.c.id,
                      sort_columns={name: feeds_table.c[name] for name in _SORTS})
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: feed_resource(ctx, row))


@api.post("/api/web-feeds", "create_web_feed", scopes=("web-feeds:write",), rate=RATE, success=201,
          query=QuerySpec(fields=FIELDS))
def create_web_feed(ctx: Ctx) -> Reply:
    """Create Web Feed (its first fetch is queued at once)."""
    data = _data(ctx, NewResource)
    with ctx.db.write() as conn:
        row = rules.create_feed(conn, ctx.account_id, ctx.now(), data.attributes,
                                ctx.services.settings.fetch_allowed_hosts)
    ctx.services.work_signal.set()
    resource = feed_resource(ctx, row)
    return Reply(201, single_document(resource, links={"self": resource["links"]["self"]}))


@api.get("/api/web-feeds/{id}", "get_web_feed", scopes=("web-feeds:read",), rate=RATE,
         query=QuerySpec(fields=FIELDS))
def get_web_feed(ctx: Ctx) -> dict[str, Any]:
    """Get Web Feed."""
    with ctx.db.read() as conn:
        row = rules.get_feed(conn, ctx.account_id, ctx.path_params["id"])
    return single_document(feed_resource(ctx, row), links={"self": ctx.url})


@api.patch("/api/web-feeds/{id}", "update_web_feed", scopes=("web-feeds:write",), rate=RATE,
           query=QuerySpec(fields=FIELDS))
def update_web_feed(ctx: Ctx) -> dict[str, Any]:
    """Update Web Feed."""
    data = _data(ctx, ExistingResource)
    expect_id(data.id, ctx.path_params["id"])
    with ctx.db.write() as conn:
        row = rules.update_feed(conn, ctx.account_id, ctx.path_params["id"], ctx.now(), data.attributes,
                                ctx.services.settings.fetch_allowed_hosts)
    ctx.services.work_signal.set()
    return single_document(feed_resource(ctx, row), links={"self": ctx.url})


@api.delete("/api/web-feeds/{id}", "delete_web_feed", scopes=("web-feeds:write",), rate=RATE, success=204)
def delete_web_feed(ctx: Ctx) -> None:
    """Delete Web Feed."""
    with ctx.db.write() as conn:
        rules.delete_feed(conn, ctx.account_id, ctx.path_params["id"])
