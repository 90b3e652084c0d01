"""What a definition reads (metrics, groups, profile data) and how often time alone can change its members."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from menura.domain.segment_conditions.conditions import (
    ConsentCondition,
    Definition,
    FunnelCondition,
    MembershipCondition,
    MetricCondition,
    PostalDistanceCondition,
    PropertyCondition,
    RegionCondition,
    SampleCondition,
)
from menura.domain.segment_conditions.filters import UNIT_SECONDS, DateFilter, Filter


@dataclass(frozen=True)
class Dependencies:
    metrics: frozenset[str]
    groups: frozenset[str]
    profile: bool  # reads profile fields, consent or location
    refresh_seconds: int | None  # re-evaluate this often because time moves (None: never needed)

    def to_json(self) -> dict[str, Any]:
        return {"metrics": sorted(self.metrics), "groups": sorted(self.groups), "profile": self.profile,
                "refresh_seconds": self.refresh_seconds}

    @staticmethod
    def from_json(raw: Mapping[str, Any]) -> Dependencies:
        return Dependencies(frozenset(raw.get("metrics", ())), frozenset(raw.get("groups", ())),
                            bool(raw.get("profile")), raw.get("refresh_seconds"))


def dependencies(definition: Definition) -> Dependencies:
    metrics: set[str] = set()
    groups: set[str] = set()
    profile = False
    units: list[int] = []

    def note(flt: Filter | None) -> None:
        if isinstance(flt, DateFilter) and flt.relative:
            units.append(UNIT_SECONDS[flt.unit] if flt.unit else UNIT_SECONDS["day"])

    for cond in definition.conditions():
        if isinstance(cond, MetricCondition):
            metrics.add(cond.metric_id)
            note(cond.timeframe)
        elif isinstance(cond, FunnelCondition):
            metrics.update(step.metric_id for step in cond.steps)
            note(cond.timeframe)
        elif isinstance(cond, MembershipCondition):
            groups.update(cond.group_ids)
            note(cond.timeframe)
        elif isinstance(cond, PropertyCondition):
            profile = True
            note(cond.filter)
        elif isinstance(cond, ConsentCondition):
            profile = True
            for cf in cond.filters:
                note(cf.filter)
        elif isinstance(cond, RegionCondition | PostalDistanceCondition | SampleCondition):
            profile = True
    refresh = None
    if units:
        # A member ages out at most this late: a sixtieth of the finest unit, between 1 min and 1 h.
        refresh = max(60, min(3600, min(units) // 60))
    return Dependencies(frozenset(metrics), frozenset(groups), profile, refresh)
