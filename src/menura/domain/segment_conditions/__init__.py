"""Segment definitions: the spec's `SegmentDefinition` / `ConditionGroup` schemas parsed into
typed conditions, with a 400 pointing at the first culprit.

Semantics shared by the SQL compiler and the Python evaluator (engine/segments), checked against
Klaviyo's documentation:
- condition groups are ANDed, the conditions inside one group are ORed (Segments API overview);
- at most 100 conditions per segment (help center, "Segment conditions reference");
- a property that is not set (missing or null) fails every value filter, positive or negative;
  only existence filters see it ("Understanding changes to how segment conditions evaluate null
  or empty values": unset properties are excluded from text and boolean conditions);
- dates are evaluated in UTC (same article).
Every other choice the spec leaves open is written next to the code that makes it.
"""

from __future__ import annotations

from menura.domain.segment_conditions.activity_conditions import (
    COMPLETION_WINDOWS,
)
from menura.domain.segment_conditions.conditions import (
    Condition,
    ConsentCondition,
    ConsentFilter,
    ConstantCondition,
    Definition,
    EventPropertyFilter,
    FunnelCondition,
    FunnelStep,
    MembershipCondition,
    MetricCondition,
    PostalDistanceCondition,
    PropertyCondition,
    PropertyRef,
    RegionCondition,
    SampleCondition,
)
from menura.domain.segment_conditions.consent import (
    CONSENT_SHAPES,
    EMAIL_SUBSCRIBED_METHODS,
    EMAIL_UNSUBSCRIBED_METHODS,
    INTEGRATION_VALUES,
    METHOD_DETAIL,
    PERMISSION_FILTERS,
    SMS_SUBSCRIBED_METHODS,
    SMS_UNSUBSCRIBED_METHODS,
    SUPPRESSION_FIELDS,
)
from menura.domain.segment_conditions.constant_conditions import (
    PREDICTIVE_NUMERIC,
    REACHABILITY,
)
from menura.domain.segment_conditions.definition import (
    FLOW_CONDITIONS,
    MAX_CONDITIONS,
    SEGMENT_CONDITIONS,
    Parser,
    parse_definition,
)
from menura.domain.segment_conditions.dependencies import (
    Dependencies,
    dependencies,
)
from menura.domain.segment_conditions.filter_parsing import (
    DATE_KINDS,
    FILTER_KINDS,
    FUNNEL_TIMEFRAMES,
    MEMBERSHIP_TIMEFRAMES,
    METRIC_PROPERTY_FILTERS,
    METRIC_TIMEFRAMES,
    NUMERIC_OPS,
    PROFILE_PROPERTY_FILTERS,
    STATUS_DATE_FILTERS,
    STRING_OPS,
    SUPPRESSION_DATE_FILTERS,
    parse_filter,
)
from menura.domain.segment_conditions.filters import (
    RELATIVE_DATE_OPERATORS,
    UNIT_SECONDS,
    DateFilter,
    Filter,
    Interval,
    ValueFilter,
    anniversary_key,
    anniversary_range,
)
from menura.domain.segment_conditions.parsing import (
    parse_datetime,
)
from menura.domain.segment_conditions.properties import (
    FILTERS_FOR_FIELD_KIND,
    LOCATION_FIELDS,
    STANDARD_FIELDS,
    parse_property,
)

__all__ = [
    "COMPLETION_WINDOWS",
    "CONSENT_SHAPES",
    "DATE_KINDS",
    "EMAIL_SUBSCRIBED_METHODS",
    "EMAIL_UNSUBSCRIBED_METHODS",
    "FILTERS_FOR_FIELD_KIND",
    "FILTER_KINDS",
    "FLOW_CONDITIONS",
    "FUNNEL_TIMEFRAMES",
    "INTEGRATION_VALUES",
    "LOCATION_FIELDS",
    "MAX_CONDITIONS",
    "MEMBERSHIP_TIMEFRAMES",
    "METHOD_DETAIL",
    "METRIC_PROPERTY_FILTERS",
    "METRIC_TIMEFRAMES",
    "NUMERIC_OPS",
    "PERMISSION_FILTERS",
    "PREDICTIVE_NUMERIC",
    "PROFILE_PROPERTY_FILTERS",
    "REACHABILITY",
    "RELATIVE_DATE_OPERATORS",
    "SEGMENT_CONDITIONS",
    "SMS_SUBSCRIBED_METHODS",
    "SMS_UNSUBSCRIBED_METHODS",
    "STANDARD_FIELDS",
    "STATUS_DATE_FILTERS",
    "STRING_OPS",
    "SUPPRESSION_DATE_FILTERS",
    "SUPPRESSION_FIELDS",
    "UNIT_SECONDS",
    "Condition",
    "ConsentCondition",
    "ConsentFilter",
    "ConstantCondition",
    "DateFilter",
    "Definition",
    "Dependencies",
    "EventPropertyFilter",
    "Filter",
    "FunnelCondition",
    "FunnelStep",
    "Interval",
    "MembershipCondition",
    "MetricCondition",
    "Parser",
    "PostalDistanceCondition",
    "PropertyCondition",
    "PropertyRef",
    "RegionCondition",
    "SampleCondition",
    "ValueFilter",
    "anniversary_key",
    "anniversary_range",
    "dependencies",
    "parse_datetime",
    "parse_definition",
    "parse_filter",
    "parse_property",
]
