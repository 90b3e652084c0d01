"""Reporting category, segment side: values and series of members added, removed and total."""

from __future__ import annotations

from typing import Any

import msgspec

from menura.api.lists import Document, expect_type
from menura.api.operation import Category, Ctx, tier
from menura.domain import segment_reports as reports
from menura.jsonapi import errors
from menura.jsonapi.documents import pick_fields
from menura.jsonapi.query import QuerySpec
from menura.store import accounts as account_store

api = Category("Reporting")
RATE = tier(1, 2)


class _Report(msgspec.Struct):
    type: str
    attributes: dict[str, Any]


def _common(ctx: Ctx, expected_type: str, allowed: tuple[str, ...]) -> tuple[dict[str, Any], Any]:
    data = ctx.body(Document[_Report]).data
    expect_type(data.type, expected_type)
    attributes = data.attributes
    for key in attributes:
        if key not in allowed:
            raise errors.invalid(f"'{key}' is not a valid field here.", pointer=f"/data/attributes/{key}")
    for key in ("statistics", "timeframe"):
        if key not in attributes:
            raise errors.invalid(f"'{key}' is a required field.", pointer=f"/data/attributes/{key}")
    with ctx.db.read() as conn:
        account = account_store.get_account(conn, ctx.account_id)
    zone = reports.zone_of(account.timezone if account is not None else None)
    return attributes, zone


def _document(ctx: Ctx, rtype: str, attributes: dict[str, Any]) -> dict[str, Any]:
    assert ctx.query is not None
    fields = ctx.query.fields_for(rtype)
    return {"data": {"type": rtype, "attributes": pick_fields(attributes, fields)}, "links": {"self": ctx.url}}


@api.post("/api/segment-values-reports", "query_segment_values", scopes=("segments:read",), rate=RATE,
          query=QuerySpec(fields={"segment-values-report": ("id", "results")}))
def query_segment_values(ctx: Ctx) -> dict[str, Any]:
    """Query Segment Values: members added, removed, net and total over a time frame."""
    attributes, zone = _common(ctx, "segment-values-report", ("statistics", "timeframe", "filter"))
    statistics = reports.check_statistics(attributes["statistics"])
    frame = reports.resolve_timeframe(attributes["timeframe"], ctx.now(), zone)
    with ctx.db.read() as conn:
        ids = reports.segment_ids_of(conn, ctx.account_id, attributes.get("filter"))
        results = reports.values_report(conn, ids, statistics, frame)
    return _document(ctx, "segment-values-report", {"results": results})


@api.post("/api/segment-series-reports", "query_segment_series", scopes=("segments:read",), rate=RATE,
          query=QuerySpec(fields={"segment-series-report": ("date_times", "id", "results")}))
def query_segment_series(ctx: Ctx) -> dict[str, Any]:
    """Query Segment Series: the same statistics per hour, day, week or month."""
    attributes, zone = _common(ctx, "segment-series-report", ("statistics", "timeframe", "interval", "filter"))
    if "interval" not in attributes:
        raise errors.invalid("'interval' is a required field.", pointer="/data/attributes/interval")
    statistics = reports.check_statistics(attributes["statistics"])
    frame = reports.resolve_timeframe(attributes["timeframe"], ctx.now(), zone)
    starts = reports.buckets(frame, attributes["interval"])
    with ctx.db.read() as conn:
        ids = reports.segment_ids_of(conn, ctx.account_id, attributes.get("filter"))
        results = reports.series_report(conn, ids, statistics, frame, starts)
    return _document(ctx, "segment-series-report", {"results": results, "date_times": reports.iso_times(starts)})
