"""Conditions on what a profile did or joined: metrics, funnels of metrics, list and segment membership."""

from __future__ import annotations

from typing import Any

from menura.domain.segment_conditions.conditions import (
    FunnelCondition,
    FunnelStep,
    MembershipCondition,
    MetricCondition,
)
from menura.domain.segment_conditions.filter_parsing import (
    FUNNEL_TIMEFRAMES,
    MEMBERSHIP_TIMEFRAMES,
    METRIC_TIMEFRAMES,
    parse_filter,
)
from menura.domain.segment_conditions.filters import DateFilter, ValueFilter
from menura.domain.segment_conditions.parsing import (
    bad,
    expect_bool,
    expect_object,
    expect_one_of,
    expect_string,
    expect_strings,
)
from menura.domain.segment_conditions.properties import event_filters

COMPLETION_WINDOWS = {"HOURS_1": 3600, "DAYS_1": 86400, "DAYS_3": 3 * 86400, "DAYS_5": 5 * 86400,
                      "WEEKS_1": 7 * 86400, "DAYS_30": 30 * 86400, "DAYS_90": 90 * 86400,
                      "DAYS_180": 180 * 86400, "YEARS_1": 365 * 86400}


def metric_condition(raw: dict[str, Any], pointer: str) -> MetricCondition:
    obj = expect_object(raw, pointer, ("type", "metric_id", "measurement", "measurement_filter", "timeframe_filter"),
                        ("metric_filters",))
    metric_id = expect_string(obj["metric_id"], f"{pointer}/metric_id")
    measurement = expect_one_of(obj["measurement"], ("count", "sum"), f"{pointer}/measurement")
    measure = parse_filter(obj["measurement_filter"], ("numeric",), f"{pointer}/measurement_filter")
    assert isinstance(measure, ValueFilter)
    timeframe = parse_filter(obj["timeframe_filter"], METRIC_TIMEFRAMES, f"{pointer}/timeframe_filter")
    assert isinstance(timeframe, DateFilter)
    return MetricCondition(metric_id, measurement, measure.operator, float(measure.value), timeframe,
                           event_filters(obj.get("metric_filters"), f"{pointer}/metric_filters"))


def funnel_condition(raw: dict[str, Any], pointer: str) -> FunnelCondition:
    obj = expect_object(raw, pointer, ("type", "timeframe_filter", "steps"), ("completion_window_seconds",))
    timeframe = parse_filter(obj["timeframe_filter"], FUNNEL_TIMEFRAMES, f"{pointer}/timeframe_filter")
    assert isinstance(timeframe, DateFilter)
    window = obj.get("completion_window_seconds")
    seconds = None if window is None else COMPLETION_WINDOWS[
        expect_one_of(window, tuple(COMPLETION_WINDOWS), f"{pointer}/completion_window_seconds")]
    steps_raw = obj["steps"]
    if not isinstance(steps_raw, list) or len(steps_raw) < 2:
        raise bad("A funnel needs at least two steps.", f"{pointer}/steps")
    steps = []
    for index, item in enumerate(steps_raw):
        at = f"{pointer}/steps/{index}"
        step = expect_object(item, at, ("metric_exists", "metric_id"), ("metric_filters",))
        steps.append(FunnelStep(expect_bool(step["metric_exists"], f"{at}/metric_exists"),
                                expect_string(step["metric_id"], f"{at}/metric_id"),
                                event_filters(step.get("metric_filters"), f"{at}/metric_filters")))
    if not any(step.exists for step in steps):
        raise bad("A funnel needs at least one step with metric_exists true.", f"{pointer}/steps")
    return FunnelCondition(timeframe, seconds, tuple(steps))


def membership_condition(raw: dict[str, Any], pointer: str) -> MembershipCondition:
    is_member = raw.get("is_member")
    optional = ("timeframe_filter",) if is_member is True else ()
    obj = expect_object(raw, pointer, ("type", "is_member", "group_ids"), optional)
    expect_bool(is_member, f"{pointer}/is_member")
    group_ids = expect_strings(obj["group_ids"], f"{pointer}/group_ids")
    if not group_ids:
        raise bad("At least one list or segment id is required.", f"{pointer}/group_ids")
    timeframe = None
    if obj.get("timeframe_filter") is not None:
        parsed = parse_filter(obj["timeframe_filter"], MEMBERSHIP_TIMEFRAMES, f"{pointer}/timeframe_filter")
        assert isinstance(parsed, DateFilter)
        timeframe = parsed
    return MembershipCondition(bool(is_member), tuple(dict.fromkeys(group_ids)), timeframe)
