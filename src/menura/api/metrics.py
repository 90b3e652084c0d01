"""Metrics category: metrics, their discovered properties, flow triggers, custom metrics, mapped
metrics and metric aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import msgspec
from sqlalchemy import Connection, Row

from menura import ids
from menura.api.listing import Listing, list_resources
from menura.api.operation import Category, Ctx, Reply, tier
from menura.domain import custom_metrics as custom_rules
from menura.domain import metrics as rules
from menura.engine import aggregates
from menura.jsonapi import errors
from menura.jsonapi.documents import Included, ResourceType, identifier, resource_object, single_document
from menura.jsonapi.filters import string_field
from menura.jsonapi.query import PageBounds, QuerySpec
from menura.store import accounts as account_store
from menura.store import metrics as store
from menura.store.event_tables import metrics as metrics_table

api = Category("Metrics")
XS, S, M = tier(1, 15), tier(3, 60), tier(10, 150)

METRIC = ResourceType("metric", "metrics", relationships=("flow-triggers",))
PROPERTY = ResourceType("metric-property", "metric-properties", relationships=("metric",))
CUSTOM = ResourceType("custom-metric", "custom-metrics", relationships=("metrics",))
MAPPED = ResourceType("mapped-metric", "mapped-metrics", relationships=("metric", "custom-metric"))
FLOW = ResourceType("flow", "flows", relationships=("flow-actions", "tags"))

METRIC_FIELDS = ("created", "id", "integration", "name", "updated")
FLOW_FIELDS = ("archived", "created", "id", "name", "status", "trigger_type", "updated")
PROPERTY_FIELDS = ("id", "inferred_type", "label", "property", "sample_values")
CUSTOM_FIELDS = ("created", "definition", "definition.aggregation_method", "definition.metric_groups", "id", "name",
                 "updated")
MAPPED_FIELDS = ("id", "updated")
PROPERTY_ADDITIONAL = {"metric-property": ("sample_values",)}


# --- serialization -------------------------------------------------------------------------------------


def serialize_metric(ctx: Ctx, row: Any, flows: list[str] | None = None) -> dict[str, Any]:
    fields = ctx.query.fields_for("metric") if ctx.query else None
    linkage = {"flow-triggers": [identifier("flow", f) for f in flows]} if flows is not None else None
    return resource_object(METRIC, row.id, rules.metric_attributes(row), ctx.links, fields=fields,
                           relationship_data=linkage)


def serialize_property(ctx: Ctx, row: Any, *, with_metric: bool = False) -> dict[str, Any]:
    assert ctx.query is not None
    fields = ctx.query.fields_for("metric-property")
    samples = ctx.query.wants("metric-property", "sample_values") or (fields is not None and "sample_values" in fields)
    linkage = {"metric": identifier("metric", row.metric_id)} if with_metric else None
    return resource_object(PROPERTY, row.id, rules.property_attributes(row, with_samples=samples), ctx.links,
                           fields=fields, relationship_data=linkage)


def serialize_custom(ctx: Ctx, row: Any, *, with_metrics: bool = False) -> dict[str, Any]:
    fields = ctx.query.fields_for("custom-metric") if ctx.query else None
    attrs = {"name": row.name, "created": row.created.isoformat(), "updated": row.updated.isoformat(),
             "definition": custom_rules.definition_attributes(row.definition)}
    linkage = None
    if with_metrics:
        linkage = {"metrics": [identifier("metric", m) for m in custom_rules.metric_ids_of(row.definition)]}
    return resource_object(CUSTOM, row.id, attrs, ctx.links, fields=fields, relationship_data=linkage)


def serialize_mapping(ctx: Ctx, mapping_id: str, row: Any, default_updated: Any) -> dict[str, Any]:
    fields = ctx.query.fields_for("mapped-metric") if ctx.query else None
    updated = row.updated if row is not None else default_updated
    linkage: dict[str, Any] = {}
    if row is not None and row.metric_id:
        linkage["metric"] = identifier("metric", row.metric_id)
    if row is not None and row.custom_metric_id:
        linkage["custom-metric"] = identifier("custom-metric", row.custom_metric_id)
    return resource_object(MAPPED, mapping_id, {"updated": updated.isoformat()}, ctx.links, fields=fields,
                           relationship_data=linkage)


def _flow_resources(conn: Connection, ctx: Ctx, flow_ids: Sequence[str]) -> list[dict[str, Any]]:
    fields = ctx.query.fields_for("flow") if ctx.query else None
    attributes = rules.flow_attributes_for(conn, ctx.account_id, list(dict.fromkeys(flow_ids)))
    return [resource_object(FLOW, fid, attrs, ctx.links, fields=fields) for fid, attrs in attributes.items()]


def _metric_or_404(conn: Connection, ctx: Ctx, metric_id: str | None = None) -> Any:
    metric_id = metric_id or ctx.path_params["id"]
    row = store.get_metric(conn, ctx.account_id, metric_id)
    if row is None:
        raise errors.not_found(f"A metric with id '{metric_id}' does not exist.")
    return row


def _property_or_404(conn: Connection, ctx: Ctx) -> Any:
    row = store.get_property(conn, ctx.account_id, ctx.path_params["id"])
    if row is None:
        raise errors.not_found(f"A metric property with id '{ctx.path_params['id']}' does not exist.")
    return row


def _custom_or_404(conn: Connection, ctx: Ctx) -> Any:
    row = store.get_custom_metric(conn, ctx.account_id, ctx.path_params["id"])
    if row is None:
        raise errors.not_found(f"A custom metric with id '{ctx.path_params['id']}' does not exist.")
    return row


def _mapping_id(ctx: Ctx) -> str:
    mapping_id = ctx.path_params["id"]
    if mapping_id not in rules.MAPPING_IDS:
        raise errors.not_found(f"'{mapping_id}' is not a mapped metric. Valid ids: {', '.join(rules.MAPPING_IDS)}.")
    return mapping_id


# --- metrics ---------------------------------------------------------------------------------------------

METRIC_FILTERS = {
    "integration.name": string_field(metrics_table.c.integration_name),
    "integration.category": string_field(metrics_table.c.integration_category),
}


def _include_flow_triggers(conn: Connection, ctx: Ctx, rows: Sequence[Row[Any]]) -> tuple[dict[str, Any], list]:
    flows = rules.flow_ids_for(conn, ctx.account_id, [row.id for row in rows])
    linkage = {mid: [identifier("flow", f) for f in fids] for mid, fids in flows.items()}
    every = [f for fids in flows.values() for f in fids]
    return linkage, _flow_resources(conn, ctx, every) if every else []


@api.get("/api/metrics", "get_metrics", scopes=("metrics:read",), rate=M,
         query=QuerySpec(fields={"metric": METRIC_FIELDS, "flow": FLOW_FIELDS}, include=("flow-triggers",),
                         page=PageBounds(200, 1, 200), filters=METRIC_FILTERS))
def get_metrics(ctx: Ctx) -> dict[str, Any]:
    """Get Metrics."""
    listing = Listing(store.metric_listing_select(ctx.account_id), metrics_table.c.id,
                      {"created": metrics_table.c.created}, default_sort="created")
    with ctx.db.read() as conn:
        return list_resources(ctx, conn, listing, lambda row: serialize_metric(ctx, row),
                              includes={"flow-triggers": _include_flow_triggers})


@api.get("/api/metrics/{id}", "get_metric", scopes=("metrics:read",), rate=M,
         query=QuerySpec(fields={"metric": METRIC_FIELDS, "flow": FLOW_FIELDS}, include=("flow-triggers",)))
def get_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Metric."""
    assert ctx.query is not None
    with ctx.db.read() as conn:
        row = _metric_or_404(conn, ctx)
        if "flow-triggers" not in ctx.query.include:
            return single_document(serialize_metric(ctx, row), links={"self": ctx.url})
        flows = rules.flow_ids_for(conn, ctx.account_id, [row.id])[row.id]
        included = Included()
        included.extend(_flow_resources(conn, ctx, flows))
    return single_document(serialize_metric(ctx, row, flows), included, links={"self": ctx.url})


@api.get("/api/metrics/{id}/flow-triggers", "get_flows_triggered_by_metric", scopes=("flows:read", "metrics:read"),
         rate=M, query=QuerySpec(fields={"flow": FLOW_FIELDS}))
def get_flows_triggered_by_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Flows Triggered by Metric (none until the flows area registers a trigger source)."""
    with ctx.db.read() as conn:
        row = _metric_or_404(conn, ctx)
        flows = rules.flow_ids_for(conn, ctx.account_id, [row.id])[row.id]
        data = _flow_resources(conn, ctx, flows) if flows else []
    return {"data": data, "links": {"self": ctx.url}}


@api.get("/api/metrics/{id}/relationships/flow-triggers", "get_ids_for_flows_triggered_by_metric",
         scopes=("flows:read", "metrics:read"), rate=M)
def get_ids_for_flows_triggered_by_metric(ctx: Ctx) -> dict[str, Any]:
    """Get IDs for Flows Triggered by Metric."""
    with ctx.db.read() as conn:
        row = _metric_or_404(conn, ctx)
        flows = rules.flow_ids_for(conn, ctx.account_id, [row.id])[row.id]
    return {"data": [identifier("flow", f) for f in flows], "links": {"self": ctx.url}}


# --- metric properties ----------------------------------------------------------------------------------


@api.get("/api/metric-properties/{id}", "get_metric_property", scopes=("metrics:read",), rate=XS,
         query=QuerySpec(fields={"metric-property": PROPERTY_FIELDS, "metric": METRIC_FIELDS}, include=("metric",),
                         additional_fields=PROPERTY_ADDITIONAL))
def get_metric_property(ctx: Ctx) -> dict[str, Any]:
    """Get Metric Property."""
    assert ctx.query is not None
    with ctx.db.read() as conn:
        row = _property_or_404(conn, ctx)
        included = None
        if "metric" in ctx.query.include:
            included = Included()
            metric = store.get_metric(conn, ctx.account_id, row.metric_id)
            if metric is not None:
                included.add(serialize_metric(ctx, metric))
    return single_document(serialize_property(ctx, row, with_metric=included is not None), included,
                           links={"self": ctx.url})


@api.get("/api/metrics/{id}/metric-properties", "get_properties_for_metric", scopes=("metrics:read",), rate=XS,
         query=QuerySpec(fields={"metric-property": PROPERTY_FIELDS}, additional_fields=PROPERTY_ADDITIONAL))
def get_properties_for_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Properties for Metric."""
    with ctx.db.read() as conn:
        metric = _metric_or_404(conn, ctx)
        rows = store.properties_of_metric(conn, ctx.account_id, metric.id)
    return {"data": [serialize_property(ctx, row) for row in rows], "links": {"self": ctx.url}}


@api.get("/api/metrics/{id}/relationships/metric-properties", "get_property_ids_for_metric",
         scopes=("metrics:read",), rate=XS)
def get_property_ids_for_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Property IDs for Metric."""
    with ctx.db.read() as conn:
        metric = _metric_or_404(conn, ctx)
        rows = store.properties_of_metric(conn, ctx.account_id, metric.id)
    return {"data": [identifier("metric-property", row.id) for row in rows], "links": {"self": ctx.url}}


@api.get("/api/metric-properties/{id}/metric", "get_metric_for_metric_property", scopes=("metrics:read",), rate=XS,
         query=QuerySpec(fields={"metric": METRIC_FIELDS}))
def get_metric_for_metric_property(ctx: Ctx) -> dict[str, Any]:
    """Get Metric for Metric Property."""
    with ctx.db.read() as conn:
        row = _property_or_404(conn, ctx)
        metric = store.get_metric(conn, ctx.account_id, row.metric_id)
    return single_document(serialize_metric(ctx, metric) if metric else None, links={"self": ctx.url})


@api.get("/api/metric-properties/{id}/relationships/metric", "get_metric_id_for_metric_property",
         scopes=("metrics:read",), rate=XS)
def get_metric_id_for_metric_property(ctx: Ctx) -> dict[str, Any]:
    """Get Metric ID for Metric Property."""
    with ctx.db.read() as conn:
        row = _property_or_404(conn, ctx)
    return {"data": identifier("metric", row.metric_id), "links": {"self": ctx.url}}


# --- custom metrics ---------------------------------------------------------------------------------------


class CustomMetricAttributes(msgspec.Struct):
    name: str
    definition: dict[str, Any]


class CustomMetricData(msgspec.Struct):
    type: Literal["custom-metric"]
    attributes: CustomMetricAttributes


class CustomMetricCreate(msgspec.Struct):
    data: CustomMetricData


class CustomMetricPatchAttributes(msgspec.Struct):
    name: str | None = None
    definition: dict[str, Any] | None = None


class CustomMetricPatchData(msgspec.Struct):
    type: Literal["custom-metric"]
    id: str
    attributes: CustomMetricPatchAttributes = msgspec.field(default_factory=CustomMetricPatchAttributes)


class CustomMetricPatch(msgspec.Struct):
    data: CustomMetricPatchData


def _definition_error(exc: custom_rules.DefinitionError) -> errors.ApiError:
    return errors.invalid(exc.detail, pointer=f"/data/attributes/{exc.path}")


def _check_unique_name(conn: Connection, account_id: str, name: str, own_id: str | None = None) -> None:
    existing = store.custom_metric_named(conn, account_id, name)
    if existing is not None and existing.id != own_id:
        raise errors.invalid(f"A custom metric named '{name}' already exists.", pointer="/data/attributes/name")


def _include_custom_metrics(conn: Connection, ctx: Ctx, row: Any) -> list[dict[str, Any]]:
    metric_rows = store.get_metrics(conn, ctx.account_id, custom_rules.metric_ids_of(row.definition))
    return [serialize_metric(ctx, m) for m in metric_rows]


@api.get("/api/custom-metrics", "get_custom_metrics", scopes=("metrics:read",), rate=S,
         query=QuerySpec(fields={"custom-metric": CUSTOM_FIELDS, "metric": METRIC_FIELDS}, include=("metrics",)))
def get_custom_metrics(ctx: Ctx) -> dict[str, Any]:
    """Get Custom Metrics."""
    assert ctx.query is not None
    wants = "metrics" in ctx.query.include
    with ctx.db.read() as conn:
        rows = store.list_custom_metrics(conn, ctx.account_id)
        doc: dict[str, Any] = {"data": [serialize_custom(ctx, row, with_metrics=wants) for row in rows],
                               "links": {"self": ctx.url}}
        if wants:
            included = Included()
            for row in rows:
                included.extend(_include_custom_metrics(conn, ctx, row))
            doc["included"] = included.as_list()
    return doc


@api.post("/api/custom-metrics", "create_custom_metric", scopes=("metrics:write",), rate=XS, success=201,
          query=QuerySpec(fields={"custom-metric": CUSTOM_FIELDS}))
def create_custom_metric(ctx: Ctx) -> Reply:
    """Create Custom Metric."""
    body = ctx.body(CustomMetricCreate)
    now = ctx.now()
    try:
        name = custom_rules.check_name(body.data.attributes.name)
    except custom_rules.DefinitionError as exc:
        raise _definition_error(exc) from None
    with ctx.db.write() as conn:
        if store.count_custom_metrics(conn, ctx.account_id) >= custom_rules.MAX_CUSTOM_METRICS:
            raise errors.invalid(f"An account can have at most {custom_rules.MAX_CUSTOM_METRICS} custom metrics.",
                                 pointer="/data")
        _check_unique_name(conn, ctx.account_id, name)
        try:
            definition = custom_rules.check_definition(conn, ctx.account_id, body.data.attributes.definition)
        except custom_rules.DefinitionError as exc:
            raise _definition_error(exc) from None
        custom_id = ids.uuid4().replace("-", "")
        store.insert_custom_metric(conn, {"id": custom_id, "account_id": ctx.account_id, "name": name,
                                          "definition": definition, "created": now, "updated": now})
        row = store.get_custom_metric(conn, ctx.account_id, custom_id)
    resource = serialize_custom(ctx, row, with_metrics=True)
    return Reply(201, single_document(resource, links={"self": resource["links"]["self"]}))


@api.get("/api/custom-metrics/{id}", "get_custom_metric", scopes=("metrics:read",), rate=S,
         query=QuerySpec(fields={"custom-metric": CUSTOM_FIELDS, "metric": METRIC_FIELDS}, include=("metrics",)))
def get_custom_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Custom Metric."""
    assert ctx.query is not None
    with ctx.db.read() as conn:
        row = _custom_or_404(conn, ctx)
        included = None
        if "metrics" in ctx.query.include:
            included = Included()
            included.extend(_include_custom_metrics(conn, ctx, row))
    return single_document(serialize_custom(ctx, row, with_metrics=included is not None), included,
                           links={"self": ctx.url})


@api.patch("/api/custom-metrics/{id}", "update_custom_metric", scopes=("metrics:write",), rate=XS,
           query=QuerySpec(fields={"custom-metric": CUSTOM_FIELDS}))
def update_custom_metric(ctx: Ctx) -> dict[str, Any]:
    """Update Custom Metric."""
    body = ctx.body(CustomMetricPatch)
    if body.data.id != ctx.path_params["id"]:
        raise errors.conflict("conflict", "The id in the body does not match the id in the URL.", pointer="/data/id")
    attrs = body.data.attributes
    with ctx.db.write() as conn:
        row = _custom_or_404(conn, ctx)
        values: dict[str, Any] = {"updated": ctx.now()}
        try:
            if attrs.name is not None:
                values["name"] = custom_rules.check_name(attrs.name)
                _check_unique_name(conn, ctx.account_id, values["name"], row.id)
            if attrs.definition is not None:
                values["definition"] = custom_rules.check_definition(conn, ctx.account_id, attrs.definition)
        except custom_rules.DefinitionError as exc:
            raise _definition_error(exc) from None
        store.update_custom_metric(conn, ctx.account_id, row.id, values)
        row = store.get_custom_metric(conn, ctx.account_id, row.id)
    return single_document(serialize_custom(ctx, row, with_metrics=True), links={"self": ctx.url})


@api.delete("/api/custom-metrics/{id}", "delete_custom_metric", scopes=("metrics:write",), rate=S)
def delete_custom_metric(ctx: Ctx) -> None:
    """Delete Custom Metric (a mapping that pointed at it is unset)."""
    with ctx.db.write() as conn:
        row = _custom_or_404(conn, ctx)
        store.delete_custom_metric(conn, ctx.account_id, row.id)


@api.get("/api/custom-metrics/{id}/metrics", "get_metrics_for_custom_metric", scopes=("metrics:read",), rate=S,
         query=QuerySpec(fields={"metric": METRIC_FIELDS}))
def get_metrics_for_custom_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Metrics for Custom Metric."""
    with ctx.db.read() as conn:
        row = _custom_or_404(conn, ctx)
        data = _include_custom_metrics(conn, ctx, row)
    return {"data": data, "links": {"self": ctx.url}}


@api.get("/api/custom-metrics/{id}/relationships/metrics", "get_metric_ids_for_custom_metric",
         scopes=("metrics:read",), rate=S)
def get_metric_ids_for_custom_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Metric IDs for Custom Metric."""
    with ctx.db.read() as conn:
        row = _custom_or_404(conn, ctx)
    return {"data": [identifier("metric", m) for m in custom_rules.metric_ids_of(row.definition)],
            "links": {"self": ctx.url}}


# --- mapped metrics ---------------------------------------------------------------------------------------


class RelatedRef(msgspec.Struct):
    type: str
    id: str


class Relation(msgspec.Struct):
    data: RelatedRef | None


class MappedRelationships(msgspec.Struct, rename={"custom_metric": "custom-metric"}):
    metric: Relation | None = None
    custom_metric: Relation | None = None


class MappedData(msgspec.Struct):
    type: Literal["mapped-metric"]
    id: str
    relationships: MappedRelationships = msgspec.field(default_factory=MappedRelationships)


class MappedPatch(msgspec.Struct):
    data: MappedData


MAPPED_QUERY = QuerySpec(fields={"mapped-metric": MAPPED_FIELDS, "metric": METRIC_FIELDS,
                                 "custom-metric": CUSTOM_FIELDS}, include=("custom-metric", "metric"))


def _account_created(conn: Connection, account_id: str) -> Any:
    account = account_store.get_account(conn, account_id)
    assert account is not None
    return account.created


def _mapping_included(conn: Connection, ctx: Ctx, rows: Sequence[Any], included: Included) -> None:
    assert ctx.query is not None
    if "metric" in ctx.query.include:
        for m in store.get_metrics(conn, ctx.account_id, [r.metric_id for r in rows if r and r.metric_id]):
            included.add(serialize_metric(ctx, m))
    if "custom-metric" in ctx.query.include:
        for r in rows:
            if r is not None and r.custom_metric_id:
                custom = store.get_custom_metric(conn, ctx.account_id, r.custom_metric_id)
                if custom is not None:
                    included.add(serialize_custom(ctx, custom))


@api.get("/api/mapped-metrics", "get_mapped_metrics", scopes=("metrics:read",), rate=S, query=MAPPED_QUERY)
def get_mapped_metrics(ctx: Ctx) -> dict[str, Any]:
    """Get Mapped Metrics: every mapping type, set or not."""
    assert ctx.query is not None
    with ctx.db.read() as conn:
        saved = store.list_mappings(conn, ctx.account_id)
        created = _account_created(conn, ctx.account_id)
        doc: dict[str, Any] = {"data": [serialize_mapping(ctx, mid, saved.get(mid), created)
                                        for mid in rules.MAPPING_IDS], "links": {"self": ctx.url}}
        if ctx.query.include:
            included = Included()
            _mapping_included(conn, ctx, list(saved.values()), included)
            doc["included"] = included.as_list()
    return doc


@api.get("/api/mapped-metrics/{id}", "get_mapped_metric", scopes=("metrics:read",), rate=S, query=MAPPED_QUERY)
def get_mapped_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Mapped Metric."""
    assert ctx.query is not None
    mapping_id = _mapping_id(ctx)
    with ctx.db.read() as conn:
        row = store.list_mappings(conn, ctx.account_id).get(mapping_id)
        resource = serialize_mapping(ctx, mapping_id, row, _account_created(conn, ctx.account_id))
        included = None
        if ctx.query.include:
            included = Included()
            _mapping_included(conn, ctx, [row], included)
    return single_document(resource, included, links={"self": ctx.url})


@api.patch("/api/mapped-metrics/{id}", "update_mapped_metric", scopes=("metrics:write",), rate=XS,
           query=QuerySpec(fields={"mapped-metric": MAPPED_FIELDS}))
def update_mapped_metric(ctx: Ctx) -> dict[str, Any]:
    """Update Mapped Metric: point a mapping at a metric or a custom metric (null unsets it)."""
    mapping_id = _mapping_id(ctx)
    body = ctx.body(MappedPatch)
    if body.data.id != mapping_id:
        raise errors.conflict("conflict", "The id in the body does not match the id in the URL.", pointer="/data/id")
    rels = body.data.relationships
    base = "/data/relationships"
    with ctx.db.write() as conn:
        current = store.list_mappings(conn, ctx.account_id).get(mapping_id)
        metric_id = current.metric_id if current is not None else None
        custom_id = current.custom_metric_id if current is not None else None
        if rels.metric is not None and rels.custom_metric is not None and rels.metric.data and rels.custom_metric.data:
            raise errors.invalid("A mapping points at a metric or a custom metric, not both.", pointer=base)
        if rels.metric is not None:
            ref = rels.metric.data
            if ref is not None:
                if ref.type != "metric":
                    raise errors.invalid("Expected type 'metric'.", pointer=f"{base}/metric/data/type")
                _metric_or_404(conn, ctx, ref.id)
                custom_id = None
            metric_id = ref.id if ref is not None else None
        if rels.custom_metric is not None:
            ref = rels.custom_metric.data
            if ref is not None:
                if ref.type != "custom-metric":
                    raise errors.invalid("Expected type 'custom-metric'.", pointer=f"{base}/custom-metric/data/type")
                if store.get_custom_metric(conn, ctx.account_id, ref.id) is None:
                    raise errors.not_found(f"A custom metric with id '{ref.id}' does not exist.",
                                           pointer=f"{base}/custom-metric/data/id")
                metric_id = None
            custom_id = ref.id if ref is not None else None
        store.save_mapping(conn, ctx.account_id, mapping_id, metric_id=metric_id, custom_metric_id=custom_id,
                           now=ctx.now())
        row = store.list_mappings(conn, ctx.account_id)[mapping_id]
    return single_document(serialize_mapping(ctx, mapping_id, row, row.updated), links={"self": ctx.url})


@api.get("/api/mapped-metrics/{id}/metric", "get_metric_for_mapped_metric", scopes=("metrics:read",), rate=S,
         query=QuerySpec(fields={"metric": METRIC_FIELDS}))
def get_metric_for_mapped_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Metric for Mapped Metric (null when the mapping is not set to a metric)."""
    mapping_id = _mapping_id(ctx)
    with ctx.db.read() as conn:
        row = store.list_mappings(conn, ctx.account_id).get(mapping_id)
        metric = store.get_metric(conn, ctx.account_id, row.metric_id) if row and row.metric_id else None
    return single_document(serialize_metric(ctx, metric) if metric else None, links={"self": ctx.url})


@api.get("/api/mapped-metrics/{id}/relationships/metric", "get_metric_id_for_mapped_metric",
         scopes=("metrics:read",), rate=S)
def get_metric_id_for_mapped_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Metric ID for Mapped Metric."""
    mapping_id = _mapping_id(ctx)
    with ctx.db.read() as conn:
        row = store.list_mappings(conn, ctx.account_id).get(mapping_id)
    data = identifier("metric", row.metric_id) if row is not None and row.metric_id else None
    return {"data": data, "links": {"self": ctx.url}}


@api.get("/api/mapped-metrics/{id}/custom-metric", "get_custom_metric_for_mapped_metric", scopes=("metrics:read",),
         rate=S, query=QuerySpec(fields={"custom-metric": CUSTOM_FIELDS}))
def get_custom_metric_for_mapped_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Custom Metric for Mapped Metric."""
    mapping_id = _mapping_id(ctx)
    with ctx.db.read() as conn:
        row = store.list_mappings(conn, ctx.account_id).get(mapping_id)
        custom = (store.get_custom_metric(conn, ctx.account_id, row.custom_metric_id)
                  if row is not None and row.custom_metric_id else None)
    return single_document(serialize_custom(ctx, custom, with_metrics=True) if custom else None,
                           links={"self": ctx.url})


@api.get("/api/mapped-metrics/{id}/relationships/custom-metric", "get_custom_metric_id_for_mapped_metric",
         scopes=("metrics:read",), rate=S)
def get_custom_metric_id_for_mapped_metric(ctx: Ctx) -> dict[str, Any]:
    """Get Custom Metric ID for Mapped Metric."""
    mapping_id = _mapping_id(ctx)
    with ctx.db.read() as conn:
        row = store.list_mappings(conn, ctx.account_id).get(mapping_id)
    data = identifier("custom-metric", row.custom_metric_id) if row is not None and row.custom_metric_id else None
    return {"data": data, "links": {"self": ctx.url}}


# --- aggregates ------------------------------------------------------------------------------------------


class AggregateAttributes(msgspec.Struct):
    metric_id: str
    measurements: list[str]
    filter: list[str]
    interval: str | None = None
    by: list[str] | None = None
    timezone: str | None = None
    sort: str | None = None
    page_size: int | None = None
    page_cursor: str | None = None
    return_fields: list[str] | None = None


class AggregateData(msgspec.Struct):
    type: Literal["metric-aggregate"]
    attributes: AggregateAttributes


class AggregateBody(msgspec.Struct):
    data: AggregateData


@api.post("/api/metric-aggregates", "query_metric_aggregates", scopes=("metrics:read",), rate=S,
          query=QuerySpec(fields={"metric-aggregate": ("data", "dates", "id")}))
def query_metric_aggregates(ctx: Ctx) -> Reply:
    """Query Metric Aggregates: one page of rows, each a dimension tuple with a series per measurement."""
    assert ctx.query is not None
    attrs = ctx.body(AggregateBody).data.attributes
    scope = "metric-aggregates:" + msgspec.json.encode(msgspec.structs.replace(attrs, page_cursor=None)).decode()
    offset = 0
    if attrs.page_cursor:
        key, _direction = ctx.services.cursors.decode(attrs.page_cursor, scope)
        offset = int(key[0]) if key and isinstance(key[0], int) else 0
    try:
        query = aggregates.build_query(metric_id=attrs.metric_id, measurements=attrs.measurements,
                                       interval=attrs.interval, by=attrs.by, filters=attrs.filter,
                                       timezone=attrs.timezone, sort=attrs.sort, page_size=attrs.page_size,
                                       offset=offset)
    except aggregates.AggregateError as exc:
        raise errors.invalid(exc.detail, pointer=f"/data/attributes/{exc.path}") from None
    with ctx.db.read() as conn:
        if store.get_metric(conn, ctx.account_id, attrs.metric_id) is None:
            raise errors.not_found(f"A metric with id '{attrs.metric_id}' does not exist.",
                                   pointer="/data/attributes/metric_id")
        result = aggregates.run(conn, ctx.account_id, query)
    agg_id = ids.uuid4()
    attributes: dict[str, Any] = {"dates": result.dates, "data": result.rows}
    fields = ctx.query.fields_for("metric-aggregate")
    if fields is not None:
        attributes = {k: v for k, v in attributes.items() if k in fields}
    links = {"self": ctx.url}
    if result.has_more:
        cursor = ctx.services.cursors.encode([offset + query.page_size, ""], "next", scope)
        links["next"] = cursor
    resource = {"type": "metric-aggregate", "id": agg_id, "attributes": attributes,
                "links": {"self": f"{ctx.links.base}/api/metric-aggregates/{agg_id}/"}}
    return Reply(200, {"data": resource, "links": links})
