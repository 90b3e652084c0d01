"""A whole definition: condition groups, each condition parsed by the parser of its type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from menura.domain.segment_conditions.activity_conditions import (
    funnel_condition,
    membership_condition,
    metric_condition,
)
from menura.domain.segment_conditions.conditions import Condition, Definition, SampleCondition
from menura.domain.segment_conditions.consent import consent_condition
from menura.domain.segment_conditions.constant_conditions import (
    custom_object_condition,
    permissions_condition,
    predictive_condition,
)
from menura.domain.segment_conditions.parsing import bad, expect_int, expect_object, show
from menura.domain.segment_conditions.profile_conditions import postal_condition, property_condition, region_condition

MAX_CONDITIONS = 100


# Flows only: a segment cannot hold a random sample.
def sample_condition(raw: dict[str, Any], pointer: str) -> SampleCondition:
    obj = expect_object(raw, pointer, ("type", "percentage"))
    return SampleCondition(expect_int(obj["percentage"], f"{pointer}/percentage", 1, 100))


Parser = Callable[[dict[str, Any], str], Condition]
SEGMENT_CONDITIONS: dict[str, Parser] = {
    "profile-group-membership": membership_condition,
    "profile-metric": metric_condition,
    "profile-marketing-consent": consent_condition,
    "profile-postal-code-distance": postal_condition,
    "profile-property": property_condition,
    "profile-region": region_condition,
    "profile-predictive-analytics": predictive_condition,
    "profile-has-custom-object": custom_object_condition,
    "profile-permissions": permissions_condition,
    "profile-metric-funnel": funnel_condition,
}
# Flow filters use the same conditions plus a random sample (not part of a segment's schema).
FLOW_CONDITIONS: dict[str, Parser] = {**SEGMENT_CONDITIONS, "profile-sample": sample_condition}


def parse_definition(raw: Any, pointer: str = "/data/attributes/definition",
                     conditions: Mapping[str, Parser] = SEGMENT_CONDITIONS) -> Definition:
    obj = expect_object(raw, pointer, ("condition_groups",))
    groups_raw = obj["condition_groups"]
    if not isinstance(groups_raw, list) or not groups_raw:
        raise bad("A definition needs at least one condition group.", f"{pointer}/condition_groups")
    groups = []
    count = 0
    for gi, group in enumerate(groups_raw):
        gat = f"{pointer}/condition_groups/{gi}"
        gobj = expect_object(group, gat, ("conditions",))
        items = gobj["conditions"]
        if not isinstance(items, list) or not items:
            raise bad("A condition group needs at least one condition.", f"{gat}/conditions")
        parsed = []
        for ci, item in enumerate(items):
            cat = f"{gat}/conditions/{ci}"
            count += 1
            if count > MAX_CONDITIONS:
                raise bad(f"A segment can have at most {MAX_CONDITIONS} conditions.", cat)
            if not isinstance(item, dict):
                raise bad("Expected a condition object.", cat)
            kind = item.get("type")
            parser = conditions.get(kind) if isinstance(kind, str) else None
            if parser is None:
                raise bad(f"{show(kind)} is not a valid condition type; expected one of "
                          f"{', '.join(sorted(conditions))}.", f"{cat}/type")
            parsed.append(parser(item, cat))
        groups.append(tuple(parsed))
    return Definition(tuple(groups))
