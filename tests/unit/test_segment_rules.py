"""Segment rules without a database: definition parsing and its 400s, what a definition depends on,
date windows, postal distances, report time frames and the Python evaluator's semantics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from menura.domain import postal_codes
from menura.domain import segment_conditions as sc
from menura.domain import segment_reports as reports
from menura.engine.segments.evaluator import Evaluator, EventFact, ProfileFacts
from menura.jsonapi.errors import ApiError
from menura.store.segments import property_date

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def definition(*conditions: dict, more: list[dict] | None = None) -> dict:
    groups = [{"conditions": list(conditions)}]
    if more:
        groups.append({"conditions": more})
    return {"condition_groups": groups}


def prop(name: str, flt: dict) -> dict:
    return {"type": "profile-property", "property": name, "filter": flt}


def metric(metric_id: str, op: str, value: float, timeframe: dict, filters: list | None = None,
           measurement: str = "count") -> dict:
    return {"type": "profile-metric", "metric_id": metric_id, "measurement": measurement,
            "measurement_filter": {"type": "numeric", "operator": op, "value": value},
            "timeframe_filter": timeframe, "metric_filters": filters}


def error(raw: dict) -> ApiError:
    with pytest.raises(ApiError) as caught:
        sc.parse_definition(raw)
    return caught.value


def test_groups_and_conditions_parse_into_typed_conditions():
    parsed = sc.parse_definition(definition(
        prop("properties['plan']", {"type": "string", "operator": "equals", "value": "gold"}),
        prop("location['country']", {"type": "string", "operator": "in", "value": ["US", "CA"]}),
        more=[metric("M1", "greater-than", 1, {"type": "date", "operator": "in-the-last", "unit": "day",
                                               "quantity": 30})]))
    first, second = parsed.groups
    assert [type(c).__name__ for c in first] == ["PropertyCondition", "PropertyCondition"]
    assert first[0].prop == sc.PropertyRef("custom", "plan", "any")
    assert first[1].prop == sc.PropertyRef("location", "country", "any")
    assert isinstance(second[0], sc.MetricCondition) and second[0].timeframe.relative
    deps = sc.dependencies(parsed)
    assert deps.metrics == {"M1"} and deps.profile and deps.refresh_seconds == 1440


@pytest.mark.parametrize(("raw", "pointer"), [
    ({"condition_groups": [{"conditions": []}]}, "/d/condition_groups/0/conditions"),
    (definition({"type": "profile-sample", "percentage": 5}), "/d/condition_groups/0/conditions/0/type"),
    (definition(prop("created", {"type": "numeric", "operator": "equals", "value": 1})),
     "/d/condition_groups/0/conditions/0/filter"),
    (definition(prop("email", {"type": "string", "operator": "phone-country-code-in", "value": ["US"]})),
     "/d/condition_groups/0/conditions/0/filter"),
    (definition(prop("phone_number", {"type": "string", "operator": "phone-country-code-in", "value": ["XX"]})),
     "/d/condition_groups/0/conditions/0/filter/value/0"),
    (definition(prop("properties['x']", {"type": "string", "operator": "regex", "value": "("})),
     "/d/condition_groups/0/conditions/0/filter/value"),
    (definition(prop("properties['x']", {"type": "date", "operator": "between-static", "start": "2025-02-01",
                                         "end": "2025-01-01"})), "/d/condition_groups/0/conditions/0/filter/end"),
    (definition(metric("M", "equals", 1, {"type": "date", "operator": "calendar-month", "value": 3})),
     "/d/condition_groups/0/conditions/0/timeframe_filter/operator"),
    (definition({"type": "profile-metric-funnel", "timeframe_filter": {"type": "date", "operator": "in-the-last",
                                                                        "unit": "day", "quantity": 3},
                 "steps": [{"metric_exists": False, "metric_id": "A"}, {"metric_exists": False, "metric_id": "B"}]}),
     "/d/condition_groups/0/conditions/0/steps"),
    (definition({"type": "profile-has-custom-object", "object_type_id": "o", "object_type_relationship_id": "r",
                 "filter": {"type": "numeric", "operator": "equals", "value": 1}, "filters": []}),
     "/d/condition_groups/0/conditions/0/object_type_id"),
    (definition({"type": "profile-region", "in_region": True, "region": "mars", "extra": 1}),
     "/d/condition_groups/0/conditions/0/extra"),
])
def test_invalid_definitions_point_at_the_culprit(raw, pointer):
    with pytest.raises(ApiError) as caught:
        sc.parse_definition(raw, "/d")
    assert caught.value.status == 400 and caught.value.pointer == pointer


def test_condition_limit():
    many = [prop("email", {"type": "existence", "operator": "is-set"})] * 101
    assert error(definition(*many)).pointer.endswith("/conditions/100")


def test_conditions_with_no_data_here_match_everyone_or_no_one():
    predictive = sc.parse_definition(definition({"type": "profile-predictive-analytics",
                                                 "dimension": "churn_probability",
                                                 "filter": {"type": "numeric", "operator": "greater-than",
                                                            "value": 0.5}}))
    assert predictive.groups[0][0] == sc.ConstantCondition(False, predictive.groups[0][0].reason)
    unreachable = sc.parse_definition(definition({"type": "profile-permissions", "channel": "whatsapp_marketing",
                                                  "permission": {"reachable_status": "implicitly_unreachable"}}))
    assert unreachable.groups[0][0].matches is True
    flows = sc.parse_definition(definition({"type": "profile-sample", "percentage": 10}), conditions=sc.FLOW_CONDITIONS)
    assert flows.groups[0][0] == sc.SampleCondition(10)


def test_date_windows():
    last = sc.DateFilter("in-the-last", unit="day", quantity=2).interval(NOW)
    assert (last.lo, last.hi) == (NOW - timedelta(days=2), NOW)
    ago = sc.DateFilter("at-least", unit="week", quantity=1).interval(NOW)
    assert (ago.lo, ago.hi) == (None, NOW - timedelta(weeks=1))
    between = sc.DateFilter("between", unit="hour", range_start=2, range_end=5).interval(NOW)
    assert (between.lo, between.hi) == (NOW - timedelta(hours=5), NOW - timedelta(hours=2))
    after = sc.DateFilter("after", date=NOW).interval(NOW)
    assert after.lo == NOW and not after.lo_inclusive
    assert sc.anniversary_range(NOW - timedelta(days=400), NOW) is None
    assert sc.anniversary_range(datetime(2024, 12, 30, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)) == \
        ("12-30 00:00:00", "01-02 00:00:00")


def test_property_dates():
    assert property_date("2025-01-02") == datetime(2025, 1, 2, tzinfo=UTC)
    assert property_date("2025-01-02T10:00:00+02:00") == datetime(2025, 1, 2, 8, tzinfo=UTC)
    assert property_date("2025-02-30") is None and property_date("soon") is None and property_date(5) is None
    assert property_date("2025-01-02T24:00") is None


def test_postal_distances():
    near = postal_codes.codes_matching("US", "02139", "miles", "less-than", 3)
    assert "02139" in near and "02138" in near and "10001" not in near
    far = postal_codes.codes_matching("US", "02139", "miles", "greater-than", 3)
    assert not set(near) & set(far)
    assert "M5V" in postal_codes.codes_matching("CA", "M5V 2T6", "kilometers", "less-than", 5)
    with pytest.raises(postal_codes.PostalError) as caught:
        postal_codes.center("JP", "100-0001")
    assert caught.value.field == "country_code"


def test_evaluator_semantics():
    evaluator = Evaluator(NOW, {"L1": "list"}, lambda sid, f: None)
    profile = ProfileFacts("01HZZZZZZZZZZZZZZZZZZZZZZZ", {
        "email": "a@x.io", "email_consent": "NEVER_SUBSCRIBED", "email_suppression_reason": None,
        "properties": {"vip": False, "tags": ["a", 3], "plan": None},
        "location": {"country": " us ", "zip": "02139"}},
        events=[EventFact("M1", NOW - timedelta(days=1), 10.25, {"sku": "x"}),
                EventFact("M1", NOW - timedelta(days=100), 5.0, {"sku": "y"})],
        lists={"L1": NOW - timedelta(days=3)})

    def matches(*conditions: dict) -> bool:
        return evaluator.matches(sc.parse_definition(definition(*conditions)), profile)

    assert matches(prop("properties['vip']", {"type": "boolean", "operator": "equals", "value": False}))
    # Unset properties fail value filters, negated ones included; only existence sees them.
    assert not matches(prop("properties['plan']", {"type": "string", "operator": "not-equals", "value": "x"}))
    assert not matches(prop("properties['gone']", {"type": "boolean", "operator": "equals", "value": False}))
    assert matches(prop("properties['plan']", {"type": "existence", "operator": "not-set"}))
    assert matches(prop("properties['tags']", {"type": "list", "operator": "contains", "value": 3}))
    assert not matches(prop("properties['tags']", {"type": "list", "operator": "contains", "value": "3"}))
    alltime = {"type": "date", "operator": "alltime"}
    assert matches(metric("M1", "equals", 2, alltime))
    assert matches(metric("M1", "equals", 15.25, alltime, measurement="sum"))
    assert matches(metric("M1", "equals", 1, alltime, [{"property": "sku", "filter": {
        "type": "string", "operator": "equals", "value": "x"}}]))
    assert matches(metric("M2", "equals", 0, alltime))  # never did it: count 0
    assert matches({"type": "profile-region", "in_region": True, "region": "united_states"})
    assert matches({"type": "profile-marketing-consent", "consent": {
        "channel": "email", "can_receive_marketing": True, "consent_status": {"subscription": "never_subscribed"}}})
    assert matches({"type": "profile-group-membership", "is_member": True, "group_ids": ["L1"], "timeframe_filter": {
        "type": "date", "operator": "in-the-last", "unit": "week", "quantity": 1}})
    assert matches({"type": "profile-postal-code-distance", "country_code": "US", "postal_code": "02138",
                    "unit": "miles", "filter": {"type": "numeric", "operator": "less-than", "value": 5}})


def test_report_timeframes():
    zone = ZoneInfo("America/New_York")
    week = reports.resolve_timeframe({"key": "last_week"}, NOW, zone)
    assert week.start.weekday() == 0 and week.end - week.start == timedelta(days=7)
    custom = reports.resolve_timeframe({"start": "2024-01-01T00:00:00Z", "end": "2024-01-03T00:00:00"}, NOW, zone)
    assert custom.start == datetime(2024, 1, 1, tzinfo=zone)  # the offset is ignored
    assert len(reports.buckets(custom, "daily")) == 2 and len(reports.buckets(custom, "hourly")) == 48
    with pytest.raises(ApiError):
        reports.buckets(reports.resolve_timeframe({"key": "last_90_days"}, NOW, zone), "daily")
    assert len(reports.buckets(reports.resolve_timeframe({"key": "last_3_months"}, NOW, zone), "monthly")) == 3
    with pytest.raises(ApiError):  # monthly series cover at most 52 weeks
        reports.buckets(reports.resolve_timeframe({"key": "last_12_months"}, NOW, zone), "monthly")
