"""Relationships several categories share: a resource's tags and the flows it triggers
(lists and segments both answer `include=tags,flow-triggers` the same way)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row

from menura.api.listing import IncludeLoader, relationship_ids
from menura.api.operation import Category, Ctx, Handler
from menura.domain import tags as tag_rules
from menura.jsonapi.documents import ResourceType, identifier, resource_object
from menura.jsonapi.query import QuerySpec
from menura.ratelimit import RateTier

TAG_FIELDS = ("id", "name")
FLOW_FIELDS = ("archived", "created", "id", "name", "status", "trigger_type", "updated")
TAG = ResourceType("tag", "tags", relationships=("tag-group", "lists", "segments", "campaigns", "flows"))
# Flow sources registered by the flows engine: (ctx, conn, resource id) -> flow resource objects.
FlowProvider = Callable[[Ctx, Connection, str], list[dict[str, Any]]]
# Loads the resource named by the request path (404 when it is not there).
ResourceLoader = Callable[[Connection, Ctx], Row[Any]]


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


@dataclass(frozen=True)
class TagsAndFlows:
    """The `tags` and `flow-triggers` endpoints of one resource type, answered alike by lists and segments."""

    resource_type: str
    load: ResourceLoader
    flow_providers: Sequence[FlowProvider]  # filled in later by the flows category: kept by reference

    def includes(self) -> dict[str, IncludeLoader]:
        return {"tags": include_tags(self.resource_type), "flow-triggers": include_flows(self.flow_providers)}

    def _tags(self, ctx: Ctx) -> list[Row[Any]]:
        with ctx.db.read() as conn:
            row = self.load(conn, ctx)
            tags = tag_rules.tags_of(conn, ctx.account_id, self.resource_type, [row.id]).get(row.id, [])
        return sorted(tags, key=lambda tag: (tag.name, tag.id))

    def tags(self, ctx: Ctx) -> dict[str, Any]:
        return {"data": [tag_resource(ctx, tag) for tag in self._tags(ctx)], "links": {"self": ctx.url}}

    def tag_ids(self, ctx: Ctx) -> dict[str, Any]:
        return relationship_ids(ctx, "tag", [tag.id for tag in self._tags(ctx)])

    def _flows(self, ctx: Ctx) -> list[dict[str, Any]]:
        with ctx.db.read() as conn:
            row = self.load(conn, ctx)
            return flows_for(ctx, conn, self.flow_providers, row.id)

    def flows(self, ctx: Ctx) -> dict[str, Any]:
        return {"data": self._flows(ctx), "links": {"self": ctx.url}}

    def flow_ids(self, ctx: Ctx) -> dict[str, Any]:
        return relationship_ids(ctx, "flow", [flow["id"] for flow in self._flows(ctx)])

    def declare(self, api: Category, *, path: str, scope: str, rate: RateTier) -> None:
        """The four operations under `path` (e.g. /api/lists/{id}), named as Klaviyo names them."""
        name, title = self.resource_type, self.resource_type.title()
        tag_scopes, flow_scopes = (f"{scope}:read", "tags:read"), ("flows:read", f"{scope}:read")
        tags, flows = QuerySpec(fields={"tag": TAG_FIELDS}), QuerySpec(fields={"flow": FLOW_FIELDS})
        for suffix, operation_id, scopes, query, answer, summary in (
            ("tags", f"get_tags_for_{name}", tag_scopes, tags, self.tags, f"Get Tags for {title}."),
            ("relationships/tags", f"get_tag_ids_for_{name}", tag_scopes, None, self.tag_ids,
             f"Get Tag IDs for {title}."),
            ("flow-triggers", f"get_flows_triggered_by_{name}", flow_scopes, flows, self.flows,
             f"Get Flows Triggered by {title}."),
            ("relationships/flow-triggers", f"get_ids_for_flows_triggered_by_{name}", flow_scopes, None,
             self.flow_ids, f"Get IDs for Flows Triggered by {title}."),
        ):
            extra = {"query": query} if query is not None else {}
            api.get(f"{path}/{suffix}", operation_id, scopes=scopes, rate=rate, **extra)(_documented(answer, summary))


def _documented(answer: Callable[[Ctx], dict[str, Any]], summary: str) -> Handler:
    """A handler of its own for one operation (the summary is read from its docstring)."""
    def handler(ctx: Ctx) -> dict[str, Any]:
        return answer(ctx)

    handler.__doc__ = summary
    return handler
