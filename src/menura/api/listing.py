"""Collection and relationship responses shared by every category: filter, sort, keyset pages,
sparse fieldsets, include, and absolute self/next/prev links."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import Connection, Row, Select
from sqlalchemy.sql.elements import ColumnElement

from menura.api.operation import Ctx
from menura.jsonapi.documents import Included, collection_document, identifier
from menura.jsonapi.filters import compile_filter
from menura.store.paging import fetch_page

# Resource dict builder for one row.
Serializer = Callable[[Row[Any]], dict[str, Any]]
# For an include name: given the page's rows, return (row id -> linkage, resources to include).
IncludeLoader = Callable[[Connection, Ctx, Sequence[Row[Any]]], tuple[dict[str, Any], list[dict[str, Any]]]]


@dataclass(frozen=True)
class Listing:
    """How one collection is listed."""

    select: Select[Any]  # already restricted to the account
    id_column: ColumnElement[Any]
    sort_columns: Mapping[str, ColumnElement[Any]]  # API sort field -> column
    default_sort: str | None = None  # None: by id
    default_descending: bool = False


def page_links(ctx: Ctx, next_cursor: str | None, prev_cursor: str | None) -> dict[str, str]:
    links = {"self": ctx.url}
    if next_cursor:
        links["next"] = _with_cursor(ctx.url, next_cursor)
    if prev_cursor:
        links["prev"] = _with_cursor(ctx.url, prev_cursor)
    return links


def _with_cursor(url: str, cursor: str) -> str:
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in _parse_pairs(parts.query) if k != "page[cursor]"]
    pairs.append(("page[cursor]", cursor))
    return urlunsplit(parts._replace(query=urlencode(pairs, safe="[],:'()")))


def _parse_pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def list_resources(
    ctx: Ctx,
    conn: Connection,
    listing: Listing,
    serialize: Serializer,
    *,
    includes: Mapping[str, IncludeLoader] | None = None,
    extra_where: ColumnElement[bool] | None = None,
) -> dict[str, Any]:
    query = ctx.query
    assert query is not None
    stmt = listing.select
    if query.filter:
        condition = compile_filter(query.filter, ctx.operation.query.filters or {})
        if condition is not None:
            stmt = stmt.where(condition)
    if extra_where is not None:
        stmt = stmt.where(extra_where)
    sort_name = query.sort or listing.default_sort
    descending = query.descending if query.sort else listing.default_descending
    sort_column = listing.sort_columns[sort_name] if sort_name else listing.id_column
    scope = f"{ctx.operation.operation_id}:{sort_name}:{descending}:{query.filter or ''}"
    boundary, direction = None, "next"
    if query.cursor:
        boundary, direction = ctx.services.cursors.decode(query.cursor, scope)
    page = fetch_page(conn, stmt, sort_column=sort_column, id_column=listing.id_column,
                      descending=descending, size=query.page_size, boundary=boundary, direction=direction)

    next_cursor = prev_cursor = None
    if page.rows and page.has_next:
        next_cursor = ctx.services.cursors.encode(_boundary(page.rows[-1], sort_column, listing), "next", scope)
    if page.rows and page.has_prev:
        prev_cursor = ctx.services.cursors.encode(_boundary(page.rows[0], sort_column, listing), "prev", scope)
    data = [serialize(row) for row in page.rows]
    included = attach_includes(ctx, conn, page.rows, data, includes or {})
    return collection_document(data, page_links(ctx, next_cursor, prev_cursor), included)


def _boundary(row: Row[Any], sort_column: ColumnElement[Any], listing: Listing) -> list[Any]:
    mapping = row._mapping
    return [mapping[sort_column.key], mapping[listing.id_column.key]]


def attach_includes(ctx: Ctx, conn: Connection, rows: Sequence[Row[Any]], data: list[dict[str, Any]],
                    loaders: Mapping[str, IncludeLoader]) -> Included | None:
    """Fill `relationships.<name>.data` on each resource and gather the `included` list."""
    query = ctx.query
    if query is None or not query.include:
        return None
    included = Included()
    for name in query.include:
        linkage, resources = loaders[name](conn, ctx, rows)
        for resource in data:
            rel = resource.setdefault("relationships", {}).setdefault(name, {})
            rel["data"] = linkage.get(resource["id"], rel.get("data"))
            # Keep "data" before "links" as Klaviyo does.
            if "links" in rel:
                rel["links"] = rel.pop("links")
        included.extend(resources)
    return included


def relationship_ids(ctx: Ctx, rtype: str, ids: Sequence[str]) -> dict[str, Any]:
    """`GET …/relationships/<name>` for a to-many relationship listed in full."""
    return {"data": [identifier(rtype, i) for i in ids], "links": {"self": ctx.url}}
