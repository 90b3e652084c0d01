"""Reporting category, campaign side: `query_campaign_values` (statistics of the campaigns sent in a
time frame, from the outcome events of their sends)."""

from __future__ import annotations

from typing import Any

import msgspec

from menura.api.bodies import expect_type
from menura.api.operation import Category, Ctx, tier
from menura.domain import campaign_reports as reports
from menura.domain import segment_reports as timeframes
from menura.jsonapi import errors
from menura.jsonapi.documents import identifier
from menura.jsonapi.query import QuerySpec
from menura.store import accounts as account_store

api = Category("Reporting")
RATE = tier(1, 2)
REPORT_TYPE = "campaign-values-report"
ALLOWED = ("statistics", "timeframe", "conversion_metric_id", "group_by", "filter")


class _Report(msgspec.Struct):
    type: str
    attributes: dict[str, Any]


class _Body(msgspec.Struct):
    data: _Report


@api.post("/api/campaign-values-reports", "query_campaign_values", scopes=("campaigns:read",), rate=RATE,
          query=QuerySpec(fields={REPORT_TYPE: ("id", "results")}))
def query_campaign_values(ctx: Ctx) -> dict[str, Any]:
    """Query Campaign Values."""
    data = ctx.body(_Body).data
    expect_type(data.type, REPORT_TYPE)
    attributes = data.attributes
    for key in attributes:
        if key not in ALLOWED:
            raise errors.invalid(f"'{key}' is not a valid field here.", pointer=f"/data/attributes/{key}")
    for key in ("statistics", "timeframe", "conversion_metric_id"):
        if key not in attributes:
            raise errors.invalid(f"'{key}' is a required field.", pointer=f"/data/attributes/{key}")
    statistics = reports.check_statistics(attributes["statistics"])
    group_by = reports.check_group_by(attributes.get("group_by"))
    conditions = reports.parse_filter(attributes.get("filter"))
    with ctx.db.read() as conn:
        account = account_store.get_account(conn, ctx.account_id)
        zone = timeframes.zone_of(account.timezone if account is not None else None)
        frame = timeframes.resolve_timeframe(attributes["timeframe"], ctx.now(), zone)
        metric_id = reports.check_conversion_metric(conn, ctx.account_id, attributes["conversion_metric_id"])
        # Operators set what a credit costs them (settings.sms_credit_price); without it spend is 0.
        price = ctx.services.settings.sms_credit_price
        results = reports.values_report(conn, ctx.account_id, frame, statistics, group_by, metric_id, conditions,
                                        credit_price=price)
    campaign_ids = list(dict.fromkeys(r["groupings"]["campaign_id"] for r in results))
    return {"data": {"type": REPORT_TYPE, "attributes": {"results": results},
                     "relationships": {"campaigns": {"data": [identifier("campaign", cid) for cid in campaign_ids]}}},
            "links": {"self": ctx.url}}
