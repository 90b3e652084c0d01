"""Fast checks of the event rules and of custom metric evaluation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from menura.domain import custom_metrics as cm
from menura.domain import events as rules
from menura.domain import metrics

RECEIVED = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_time_defaults_truncates_and_is_bounded():
    assert rules.parse_time(None, RECEIVED) == RECEIVED.replace(microsecond=0)
    assert rules.parse_time("2024-01-01T10:00:00.9+02:00", RECEIVED) == datetime(2024, 1, 1, 8, tzinfo=UTC)
    assert rules.parse_time("2024-01-01T10:00:00", RECEIVED) == datetime(2024, 1, 1, 10, tzinfo=UTC)
    for bad in ("yesterday", "1989-12-31T23:59:59Z", (RECEIVED + timedelta(days=366)).isoformat()):
        with pytest.raises(rules.EventRuleError) as err:
            rules.parse_time(bad, RECEIVED)
        assert err.value.field == "time"


def test_names_properties_and_values():
    assert rules.check_metric_name("  Placed Order ") == "Placed Order"
    with pytest.raises(rules.EventRuleError):
        rules.check_metric_name("x" * 128)
    rules.check_metric_name("x" * 127)
    with pytest.raises(rules.EventRuleError):
        rules.check_properties({f"p{i}": i for i in range(401)})
    with pytest.raises(rules.EventRuleError):
        rules.check_properties({"nested": {"deep": ["é" * 60_000]}})
    rules.check_properties({"ok": "x" * 100_000})
    assert rules.value_of(None, {"$value": 12}) == 12.0
    assert rules.value_of(3.0, {"$value": 12}) == 3.0
    assert rules.value_of(None, {"$value": "12"}) is None
    assert rules.default_unique_id(datetime(2024, 1, 1, tzinfo=UTC)) == "1704067200"


def test_inferred_types():
    assert [metrics.inferred_type(v) for v in (True, 1, 1.5, [1], "2024-01-01 10:00:00", "hi", {"a": 1})] == [
        "Boolean", "Number", "Number", "List", "Date", "String", None]
    assert metrics.property_id("abc", "x") == metrics.property_id("abc", "x") != metrics.property_id("abd", "x")


DEFINITION = {"aggregation_method": "value", "metric_groups": [
    {"metric_id": "A", "metric_filters": [
        {"property": "Brand", "filter": {"type": "string", "operator": "starts-with", "value": "Ac"}},
        {"property": "Items", "filter": {"type": "numeric", "operator": "greater-than-or-equal", "value": 2}}],
     "value_property": None},
    {"metric_id": "B", "metric_filters": [
        {"property": "Tags", "filter": {"type": "list", "operator": "contains", "value": "vip"}},
        {"property": "Gift", "filter": {"type": "existence", "operator": "not-set"}}],
     "value_property": "Total"}]}


@pytest.mark.parametrize("metric_id,props,value,expected", [
    ("A", {"Brand": "Acme", "Items": 2}, 10.0, (1, 10.0)),
    ("A", {"Brand": "Acme", "Items": 1}, 10.0, (0, 0.0)),
    ("A", {"Brand": "Zed", "Items": 5}, 10.0, (0, 0.0)),
    ("A", {"Brand": "Acme", "Items": 3, "$value": 4}, None, (1, 4.0)),
    ("B", {"Tags": ["vip", "x"], "Total": 7}, 1.0, (1, 7.0)),
    ("B", {"Tags": ["vip"], "Total": 7, "Gift": True}, 1.0, (0, 0.0)),
    ("C", {}, 1.0, (0, 0.0)),
])
def test_custom_metric_contribution(metric_id, props, value, expected):
    assert cm.event_contribution(DEFINITION, metric_id, props, value) == expected


@pytest.mark.parametrize("spec,present,actual,holds", [
    ({"type": "string", "operator": "in", "value": ["a", "b"]}, True, "b", True),
    ({"type": "string", "operator": "not-contains", "value": "x"}, False, None, True),
    ({"type": "string", "operator": "regex", "value": "^a.c$"}, True, "abc", True),
    ({"type": "string", "operator": "nregex", "value": "^a"}, True, "abc", False),
    ({"type": "boolean", "operator": "equals", "value": False}, True, False, True),
    ({"type": "numeric", "operator": "not-equals", "value": 3}, True, 4, True),
    ({"type": "list", "operator": "contains-substring", "value": "ip"}, True, ["vip"], True),
    ({"type": "list", "operator": "not-contains-starts-with", "value": "v"}, True, ["vip"], False),
    ({"type": "existence", "operator": "is-set"}, True, None, True),
])
def test_conditions(spec, present, actual, holds):
    assert cm.condition_holds(spec, present, actual) is holds
