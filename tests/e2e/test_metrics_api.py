"""Metrics category end to end through the official SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from openapi_client.exceptions import ApiException

from tests.e2e.test_events import event_body, wait_for_events
from tests.spec import assert_matches_spec


def _seed(sdk, http):
    sdk.Events.create_event(event_body("m1@example.com", properties={"Brand": "Acme", "Items": 3, "Tags": ["a", "b"],
                                                                     "When": "2024-01-01T00:00:00Z"},
                                       time_="2024-01-05T10:00:00Z", value=30, unique_id="1"))
    sdk.Events.create_event(event_body("m2@example.com", properties={"Brand": "Other", "Items": 1},
                                       time_="2024-01-06T10:00:00Z", value=5, unique_id="2"))
    sdk.Events.create_event(event_body("m2@example.com", metric="Viewed Product", properties={"SKU": "x"},
                                       time_="2024-01-06T11:00:00Z", unique_id="3"))
    wait_for_events(http, 3)
    metrics = {m["attributes"]["name"]: m for m in http.get("/api/metrics").json()["data"]}
    return metrics


def test_metrics_and_their_properties(sdk, http):
    metrics = _seed(sdk, http)
    assert set(metrics) == {"Placed Order", "Viewed Product"}
    listing = http.get("/api/metrics").json()
    assert_matches_spec("get_metrics", 200, listing)
    placed = metrics["Placed Order"]
    assert placed["attributes"]["integration"]["key"] == "api"
    assert placed["attributes"]["integration"]["category"] == "API"

    one = sdk.Metrics.get_metric(placed["id"])
    assert one.data.attributes.name == "Placed Order"
    assert_matches_spec("get_metric", 200, http.get(f"/api/metrics/{placed['id']}",
                                                    params={"include": "flow-triggers"}).json())
    api_only = sdk.Metrics.get_metrics(filter='equals(integration.category,"API")')
    assert len(api_only.data) == 2
    assert sdk.Metrics.get_metrics(filter='equals(integration.name,"Shopify")').data == []

    props = http.get(f"/api/metrics/{placed['id']}/metric-properties",
                     params={"additional-fields[metric-property]": "sample_values"}).json()
    assert_matches_spec("get_properties_for_metric", 200, props)
    by_name = {p["attributes"]["property"]: p for p in props["data"]}
    assert {n: p["attributes"]["inferred_type"] for n, p in by_name.items()} == {
        "Brand": "String", "Items": "Number", "Tags": "List", "When": "Date"}
    assert set(by_name["Brand"]["attributes"]["sample_values"]) <= {"Acme", "Other"}
    assert sdk.Metrics.get_properties_for_metric(placed["id"]).data
    ids = sdk.Metrics.get_property_ids_for_metric(placed["id"])
    assert {i.id for i in ids.data} == {p["id"] for p in props["data"]}
    assert_matches_spec("get_property_ids_for_metric", 200,
                        http.get(f"/api/metrics/{placed['id']}/relationships/metric-properties").json())

    prop_id = by_name["Brand"]["id"]
    prop = http.get(f"/api/metric-properties/{prop_id}", params={"include": "metric"}).json()
    assert_matches_spec("get_metric_property", 200, prop)
    assert prop["included"][0]["id"] == placed["id"]
    assert sdk.Metrics.get_metric_property(prop_id).data.attributes.label == "Brand"
    assert sdk.Metrics.get_metric_for_metric_property(prop_id).data.id == placed["id"]
    assert sdk.Metrics.get_metric_id_for_metric_property(prop_id).data.id == placed["id"]
    assert_matches_spec("get_metric_for_metric_property", 200,
                        http.get(f"/api/metric-properties/{prop_id}/metric").json())
    assert_matches_spec("get_metric_id_for_metric_property", 200,
                        http.get(f"/api/metric-properties/{prop_id}/relationships/metric").json())

    flows = sdk.Metrics.get_flows_triggered_by_metric(placed["id"])
    assert flows.data == []
    assert sdk.Metrics.get_ids_for_flows_triggered_by_metric(placed["id"]).data == []
    assert_matches_spec("get_flows_triggered_by_metric", 200,
                        http.get(f"/api/metrics/{placed['id']}/flow-triggers").json())
    assert_matches_spec("get_ids_for_flows_triggered_by_metric", 200,
                        http.get(f"/api/metrics/{placed['id']}/relationships/flow-triggers").json())

    with pytest.raises(ApiException) as err:
        sdk.Metrics.get_metric("nope00")
    assert err.value.status == 404


def _custom_body(name, metric_id, *, method="value", filters=None, value_property=None):
    group = {"metric_id": metric_id}
    if filters is not None:
        group["metric_filters"] = filters
    if value_property is not None:
        group["value_property"] = value_property
    return {"data": {"type": "custom-metric", "attributes": {
        "name": name, "definition": {"aggregation_method": method, "metric_groups": [group]}}}}


def test_custom_metrics_lifecycle(sdk, http, account, server):
    metrics = _seed(sdk, http)
    placed = metrics["Placed Order"]["id"]
    created = http.post("/api/custom-metrics", json=_custom_body(
        "Acme revenue", placed, filters=[{"property": "Brand", "filter": {"type": "string", "operator": "equals",
                                                                           "value": "Acme"}}]))
    assert created.status_code == 201, created.text
    assert_matches_spec("create_custom_metric", 201, created.json())
    custom_id = created.json()["data"]["id"]
    assert len(custom_id) == 32

    dup = http.post("/api/custom-metrics", json=_custom_body("Acme revenue", placed))
    assert dup.status_code == 400
    assert dup.json()["errors"][0]["source"] == {"pointer": "/data/attributes/name"}
    unknown = http.post("/api/custom-metrics", json=_custom_body("X", "nope00"))
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["source"] == {
        "pointer": "/data/attributes/definition/metric_groups/0/metric_id"}
    bad_op = http.post("/api/custom-metrics", json=_custom_body(
        "Y", placed, filters=[{"property": "Items", "filter": {"type": "numeric", "operator": "bigger", "value": 1}}]))
    assert bad_op.status_code == 400

    listing = http.get("/api/custom-metrics", params={"include": "metrics"}).json()
    assert_matches_spec("get_custom_metrics", 200, listing)
    assert [c["id"] for c in listing["data"]] == [custom_id]
    assert listing["included"][0]["id"] == placed
    got = sdk.Metrics.get_custom_metric(custom_id, include=["metrics"])
    assert got.data.attributes.name == "Acme revenue"
    assert_matches_spec("get_custom_metric", 200, http.get(f"/api/custom-metrics/{custom_id}").json())
    assert [m.id for m in sdk.Metrics.get_metrics_for_custom_metric(custom_id).data] == [placed]
    assert [m.id for m in sdk.Metrics.get_metric_ids_for_custom_metric(custom_id).data] == [placed]
    assert_matches_spec("get_metrics_for_custom_metric", 200,
                        http.get(f"/api/custom-metrics/{custom_id}/metrics").json())
    assert_matches_spec("get_metric_ids_for_custom_metric", 200,
                        http.get(f"/api/custom-metrics/{custom_id}/relationships/metrics").json())

    patched = sdk.Metrics.update_custom_metric(custom_id, {"data": {"type": "custom-metric", "id": custom_id,
                                                                    "attributes": {"name": "Acme sales"}}})
    assert patched.data.attributes.name == "Acme sales"
    raw = http.patch(f"/api/custom-metrics/{custom_id}", json={"data": {"type": "custom-metric", "id": custom_id,
                                                                         "attributes": {}}})
    assert_matches_spec("update_custom_metric", 200, raw.json())

    # The custom metric counts matching events (engine check through the domain function).
    from datetime import UTC, datetime

    from menura.domain import custom_metrics
    from menura.store import metrics as store

    with server.db.read() as conn:
        row = store.get_custom_metric(conn, account.id, custom_id)
        totals = custom_metrics.totals(conn, account.id, row.definition, datetime(2024, 1, 1, tzinfo=UTC),
                                       datetime(2024, 2, 1, tzinfo=UTC))
    assert (totals.count, totals.value) == (1, 30.0)

    # Map revenue to it, then delete it: the mapping is unset.
    sdk.Metrics.update_mapped_metric("revenue", {"data": {"type": "mapped-metric", "id": "revenue", "relationships": {
        "custom-metric": {"data": {"type": "custom-metric", "id": custom_id}}}}})
    assert sdk.Metrics.get_custom_metric_id_for_mapped_metric("revenue").data.id == custom_id
    sdk.Metrics.delete_custom_metric(custom_id)
    assert http.get(f"/api/custom-metrics/{custom_id}").status_code == 404
    assert http.get("/api/mapped-metrics/revenue/relationships/custom-metric").json()["data"] is None


def test_mapped_metrics(sdk, http):
    metrics = _seed(sdk, http)
    placed = metrics["Placed Order"]["id"]
    listing = http.get("/api/mapped-metrics").json()
    assert_matches_spec("get_mapped_metrics", 200, listing)
    assert [m["id"] for m in listing["data"]] == ["added_to_cart", "cancelled_sales", "ordered_product",
                                                  "refunded_sales", "revenue", "started_checkout", "viewed_product"]
    body = {"data": {"type": "mapped-metric", "id": "revenue",
                     "relationships": {"metric": {"data": {"type": "metric", "id": placed}}}}}
    updated = http.patch("/api/mapped-metrics/revenue", json=body)
    assert updated.status_code == 200, updated.text
    assert_matches_spec("update_mapped_metric", 200, updated.json())
    one = sdk.Metrics.get_mapped_metric("revenue", include=["metric"])
    assert one.data.relationships.metric.data.id == placed
    raw = http.get("/api/mapped-metrics/revenue", params={"include": "metric,custom-metric"}).json()
    assert_matches_spec("get_mapped_metric", 200, raw)
    assert raw["included"][0]["id"] == placed
    assert sdk.Metrics.get_metric_for_mapped_metric("revenue").data.id == placed
    assert sdk.Metrics.get_metric_id_for_mapped_metric("revenue").data.id == placed
    assert_matches_spec("get_metric_for_mapped_metric", 200, http.get("/api/mapped-metrics/revenue/metric").json())
    assert_matches_spec("get_metric_id_for_mapped_metric", 200,
                        http.get("/api/mapped-metrics/revenue/relationships/metric").json())
    empty = http.get("/api/mapped-metrics/revenue/custom-metric").json()
    assert empty["data"] is None
    assert_matches_spec("get_custom_metric_for_mapped_metric", 200, empty)
    assert_matches_spec("get_custom_metric_id_for_mapped_metric", 200,
                        http.get("/api/mapped-metrics/revenue/relationships/custom-metric").json())
    assert sdk.Metrics.get_mapped_metrics().data[4].id == "revenue"

    unset = {"data": {"type": "mapped-metric", "id": "revenue", "relationships": {"metric": {"data": None}}}}
    assert http.patch("/api/mapped-metrics/revenue", json=unset).status_code == 200
    assert http.get("/api/mapped-metrics/revenue/relationships/metric").json()["data"] is None
    assert http.get("/api/mapped-metrics/nonsense").status_code == 404
    missing = {"data": {"type": "mapped-metric", "id": "revenue",
                        "relationships": {"metric": {"data": {"type": "metric", "id": "nope00"}}}}}
    assert http.patch("/api/mapped-metrics/revenue", json=missing).status_code == 404


def test_query_metric_aggregates_through_the_sdk(sdk, http):
    metrics = _seed(sdk, http)
    placed = metrics["Placed Order"]["id"]
    body = {"data": {"type": "metric-aggregate", "attributes": {
        "metric_id": placed, "measurements": ["count", "sum_value", "unique"], "interval": "day",
        "filter": ["greater-or-equal(datetime,2024-01-05T00:00:00)", "less-than(datetime,2024-01-08T00:00:00)"],
        "timezone": "UTC"}}}
    result = sdk.Metrics.query_metric_aggregates(body)
    assert [d.isoformat() for d in result.data.attributes.dates] == [
        "2024-01-05T00:00:00+00:00", "2024-01-06T00:00:00+00:00", "2024-01-07T00:00:00+00:00"]
    raw = http.post("/api/metric-aggregates", json=body).json()
    assert_matches_spec("query_metric_aggregates", 200, raw)
    [row] = raw["data"]["attributes"]["data"]
    assert row == {"dimensions": [], "measurements": {"count": [1.0, 1.0, 0.0], "sum_value": [30.0, 5.0, 0.0],
                                                      "unique": [1.0, 1.0, 0.0]}}

    body["data"]["attributes"]["filter"] = ["less-than(datetime,2024-01-08T00:00:00)"]
    response = http.post("/api/metric-aggregates", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"pointer": "/data/attributes/filter"}
    body["data"]["attributes"]["metric_id"] = "nope00"
    body["data"]["attributes"]["filter"] = ["greater-or-equal(datetime,2024-01-05)", "less-than(datetime,2024-01-08)"]
    assert http.post("/api/metric-aggregates", json=body).status_code == 404
