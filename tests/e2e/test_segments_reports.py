"""Reporting operations for segments end to end through the official SDK: members added, removed,
net change and total, as values over a time frame and as a series per interval."""

from __future__ import annotations

from datetime import timedelta

import httpx

from menura.clock import SystemClock
from menura.store import segments as store
from tests.e2e.test_segments import create_profile, segment_body, wait_computed
from tests.spec import assert_matches_spec

STATS = ["members_added", "members_removed", "net_members_changed", "total_members"]


def _segment_with_history(http: httpx.Client, server, account) -> tuple[str, list[str]]:
    """A segment whose history has two entries three days ago and one exit two days ago."""
    people = [create_profile(http, email=f"r{i}@x.io", properties={"plan": "gold"}) for i in range(3)]
    condition = {"type": "profile-property", "property": "properties['plan']",
                 "filter": {"type": "string", "operator": "equals", "value": "nothing-matches"}}
    segment_id = http.post("/api/segments", json=segment_body("history", [[condition]])).json()["data"]["id"]
    wait_computed(http, segment_id)
    now = SystemClock().now()
    with server.db.write() as conn:
        store.add_members(conn, account.id, segment_id, people[:2], now - timedelta(days=3))
        store.remove_members(conn, account.id, segment_id, people[:1], now - timedelta(days=2))
    return segment_id, people


def test_values_report(sdk, http, server, account):
    segment_id, _ = _segment_with_history(http, server, account)
    body = {"data": {"type": "segment-values-report", "attributes": {
        "statistics": STATS, "timeframe": {"key": "last_7_days"}, "filter": f"equals(segment_id,'{segment_id}')"}}}
    result = sdk.Reporting.query_segment_values(body)
    [row] = result.data.attributes.results
    assert row.groupings == {"segment_id": segment_id}
    assert row.statistics == {"members_added": 2, "members_removed": 1, "net_members_changed": 1,
                              "total_members": 1}
    raw = http.post("/api/segment-values-reports", json=body)
    assert raw.status_code == 200, raw.text
    assert_matches_spec("query_segment_values", 200, raw.json())
    # A window after the changes: nothing added or removed, the total carried over.
    later = {"data": {"type": "segment-values-report", "attributes": {
        "statistics": ["members_added", "total_members"], "timeframe": {"key": "today"},
        "filter": f"any(segment_id,['{segment_id}'])"}}}
    [row] = http.post("/api/segment-values-reports", json=later).json()["data"]["attributes"]["results"]
    assert row["statistics"] == {"members_added": 0, "total_members": 1}


def test_series_report(sdk, http, server, account):
    segment_id, _ = _segment_with_history(http, server, account)
    body = {"data": {"type": "segment-series-report", "attributes": {
        "statistics": ["members_added", "members_removed", "total_members"], "timeframe": {"key": "last_7_days"},
        "interval": "daily", "filter": f"equals(segment_id,'{segment_id}')"}}}
    result = sdk.Reporting.query_segment_series(body)
    assert len(result.data.attributes.date_times) in (7, 8)
    [row] = result.data.attributes.results
    assert sum(row.statistics["members_added"]) == 2 and sum(row.statistics["members_removed"]) == 1
    assert row.statistics["total_members"][-1] == 1 and row.statistics["total_members"][0] == 0
    raw = http.post("/api/segment-series-reports", json=body)
    assert_matches_spec("query_segment_series", 200, raw.json())


def test_report_errors(http, other_account, server):
    def post(attributes: dict, path: str = "/api/segment-values-reports", rtype: str = "segment-values-report"):
        return http.post(path, json={"data": {"type": rtype, "attributes": attributes}})

    bad_stat = post({"statistics": ["opens"], "timeframe": {"key": "today"}})
    assert bad_stat.status_code == 400 and bad_stat.json()["errors"][0]["source"]["pointer"] == \
        "/data/attributes/statistics/0"
    too_long = post({"statistics": STATS, "timeframe": {"start": "2024-01-01T00:00:00", "end": "2025-06-01T00:00:00"}})
    assert too_long.status_code == 400
    too_early = post({"statistics": STATS, "timeframe": {"start": "2023-01-01T00:00:00", "end": "2023-02-01T00:00:00"}})
    assert too_early.status_code == 400
    unknown = post({"statistics": STATS, "timeframe": {"key": "today"}, "filter": "equals(segment_id,'nope')"})
    assert unknown.status_code == 404
    hourly = post({"statistics": STATS, "timeframe": {"key": "last_30_days"}, "interval": "hourly"},
                  "/api/segment-series-reports", "segment-series-report")
    assert hourly.status_code == 400 and "7 days" in hourly.json()["errors"][0]["detail"]
    bad_filter = post({"statistics": STATS, "timeframe": {"key": "today"}, "filter": "equals(name,'x')"})
    assert bad_filter.status_code == 400
    assert bad_filter.json()["errors"][0]["source"]["pointer"] == "/data/attributes/filter"
