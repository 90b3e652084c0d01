"""Relationships several categories share: a resource's tags and the flows it triggers
(lists and segments both answer `include=tags,flow-triggers` the same way)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, Row

from menura.api.listing import IncludeLoader
from menura.api.operation import Ctx
from menura.domain import tags as tag_rules
from menura.jsonapi.documents import ResourceType, identifier, resource_object

TAG = ResourceType("tag", "tags", relationships=("tag-group", "lists", "segments", "campaigns", "flows"))
# Flow sources registered by the flows engine: (ctx, conn, resource id) -> flow resource objects.
FlowProvider = Callable[[Ctx, Connection, str], list[dict[str, Any]]]


def tag_resource(ctx: Ctx, row: Row[Any]) -> dict[str, Any]:
    assert ctx.query is not None
    return resource_object(TAG, row.id, {"name": row.name}, ctx.links, fields=ctx.query.fields_for("tag"))


def flows_for(ctx: Ctx, conn: Connection, providers: Sequence[FlowProvider], resource_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for provider in providers:
        found.extend(provider(ctx, conn, resource_id))
    return found


def include_tags(resource_type: str) -> IncludeLoader:
    def load(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        by_resource = tag_rules.tags_of(conn, ctx.account_id, resource_type, [row.id for row in rows])
        linkage = {row.id: [identifier("tag", tag.id) for tag in by_resource.get(row.id, [])] for row in rows}
        resources = [tag_resource(ctx, tag) for tags in by_resource.values() for tag in tags]
        return linkage, resources
    return load


def include_flows(providers: Sequence[FlowProvider]) -> IncludeLoader:
    def load(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        linkage: dict[str, Any] = {}
        resources: list[dict[str, Any]] = []
        for row in rows:
            flows = flows_for(ctx, conn, providers, row.id)
            linkage[row.id] = [identifier("flow", flow["id"]) for flow in flows]
            resources.extend(flows)
        return linkage, resources
    return load
