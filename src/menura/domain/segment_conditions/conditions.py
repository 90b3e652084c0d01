"""The typed conditions a segment (or flow filter) definition is made of."""

from __future__ import annotations

from dataclasses import dataclass

from menura.domain.segment_conditions.filters import DateFilter, Filter, ValueFilter


@dataclass(frozen=True)
class PropertyRef:
    """`source` is "column" (a profile column), "location" or "custom" (JSON keys)."""

    source: str
    name: str
    kind: str  # string | phone | datetime | any


@dataclass(frozen=True)
class PropertyCondition:
    prop: PropertyRef
    filter: Filter


@dataclass(frozen=True)
class EventPropertyFilter:
    name: str
    filter: ValueFilter | None  # None: no filter on this property (the spec allows null)


@dataclass(frozen=True)
class MetricCondition:
    metric_id: str
    measurement: str  # count | sum
    operator: str
    value: float
    timeframe: DateFilter
    filters: tuple[EventPropertyFilter, ...] = ()


@dataclass(frozen=True)
class FunnelStep:
    exists: bool
    metric_id: str
    filters: tuple[EventPropertyFilter, ...] = ()


@dataclass(frozen=True)
class FunnelCondition:
    timeframe: DateFilter
    window_seconds: int | None
    steps: tuple[FunnelStep, ...]


@dataclass(frozen=True)
class ConsentFilter:
    """`field`: status_date | is_double_opt_in | custom_source | method | bounce_date |
    manual_suppression_date | invalid_email_date | is_rcs_capable."""

    field: str
    method: str | None = None
    filter: Filter | None = None


@dataclass(frozen=True)
class ConsentCondition:
    channel: str  # email | sms | push
    can_receive: bool
    subscription: str  # any | subscribed | unsubscribed | never_subscribed
    filters: tuple[ConsentFilter, ...] = ()


@dataclass(frozen=True)
class MembershipCondition:
    is_member: bool
    group_ids: tuple[str, ...]
    timeframe: DateFilter | None = None


@dataclass(frozen=True)
class RegionCondition:
    in_region: bool
    region: str  # european_union | united_states


@dataclass(frozen=True)
class PostalDistanceCondition:
    country_code: str
    postal_code: str
    unit: str  # kilometers | miles
    operator: str  # greater-than | less-than
    value: float


@dataclass(frozen=True)
class ConstantCondition:
    """A condition whose data does not exist here (predictive analytics before any model ran,
    custom objects, WhatsApp permissions): it matches everyone or no one, said once, here."""

    matches: bool
    reason: str


@dataclass(frozen=True)
class SampleCondition:
    """A random sample of `percentage` percent, stable per profile (flows' `profile-sample`)."""

    percentage: int
    seed: str = ""


Condition = (PropertyCondition | MetricCondition | FunnelCondition | ConsentCondition | MembershipCondition
             | RegionCondition | PostalDistanceCondition | ConstantCondition | SampleCondition)


@dataclass(frozen=True)
class Definition:
    groups: tuple[tuple[Condition, ...], ...]

    def conditions(self) -> list[Condition]:
        return [c for group in self.groups for c in group]
