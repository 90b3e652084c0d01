"""An independent, plain-Python reading of a segment definition for one profile.

It shares no SQL with compiler.py: tests give it the same profiles, events and memberships and
check that it agrees with the database on every profile (tests/integration/test_segment_equivalence.py).
Both implement the semantics written at the top of compiler.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from menura.domain import postal_codes as postal
from menura.domain import segment_conditions as sc
from menura.domain.segment_conditions import DateFilter, ValueFilter
from menura.engine.segments import regions
from menura.engine.segments.compiler import (
    PUSH_ENABLED,
    SUPPRESSION_REASON,
    ULID_ALPHABET,
    compare_number,
    postal_calling_code,
    sample_threshold,
)
from menura.store.segments import property_date

_MISSING = object()


@dataclass(frozen=True)
class EventFact:
    metric_id: str
    occurred_at: datetime
    value: float | None
    properties: Mapping[str, Any]


@dataclass
class ProfileFacts:
    id: str
    fields: Mapping[str, Any]  # the profile row's columns (location and properties as dicts)
    events: Sequence[EventFact] = ()
    lists: Mapping[str, datetime] = field(default_factory=dict)  # list id -> joined
    push_tokens: Sequence[tuple[str, datetime]] = ()  # (enablement_status, recorded_date)


# segment id, profile -> when the profile joined that segment (None: not a member)
SegmentMembership = Callable[[str, ProfileFacts], datetime | None]


def _json_type(value: Any) -> str | None:
    if value is _MISSING:
        return None
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class Reader:
    """Typed reads of one property, None when absent or of another type."""

    def __init__(self, raw: Any, *, column: bool = False) -> None:
        self.raw, self.column = raw, column

    def is_set(self) -> bool:
        return self.raw is not None if self.column else _json_type(self.raw) not in (None, "null")

    def text(self) -> str | None:
        return self.raw if isinstance(self.raw, str) else None

    def number(self) -> float | None:
        if isinstance(self.raw, bool) or not isinstance(self.raw, int | float):
            return None
        return float(self.raw)

    def boolean(self) -> bool | None:
        return self.raw if isinstance(self.raw, bool) else None

    def array(self) -> list[Any] | None:
        return self.raw if isinstance(self.raw, list) else None

    def date(self) -> datetime | None:
        if isinstance(self.raw, datetime):
            return self.raw.astimezone(UTC)
        return None if self.column else property_date(self.text())


def _same_element(element: Any, value: Any) -> bool:
    if value is None:
        return element is None
    if isinstance(value, str):
        return isinstance(element, str) and element == value
    return not isinstance(element, bool) and isinstance(element, int | float) and float(element) == float(value)


class Evaluator:
    def __init__(self, now: datetime, group_kinds: Mapping[str, str], segment_member: SegmentMembership) -> None:
        self.now = now
        self.group_kinds = group_kinds
        self.segment_member = segment_member

    def matches(self, definition: sc.Definition, facts: ProfileFacts) -> bool:
        return all(any(self.condition(c, facts) for c in group) for group in definition.groups)

    def condition(self, cond: sc.Condition, facts: ProfileFacts) -> bool:
        if isinstance(cond, sc.PropertyCondition):
            return self.value_filter(self._property(cond.prop, facts), cond.filter)
        if isinstance(cond, sc.MetricCondition):
            return self._metric(cond, facts)
        if isinstance(cond, sc.FunnelCondition):
            return self._funnel(cond, facts)
        if isinstance(cond, sc.ConsentCondition):
            return self._consent(cond, facts)
        if isinstance(cond, sc.MembershipCondition):
            return self._membership(cond, facts)
        if isinstance(cond, sc.RegionCondition):
            country = self._country(facts)
            inside = country is not None and country in regions.NAMES[cond.region]
            return inside == cond.in_region
        if isinstance(cond, sc.PostalDistanceCondition):
            return self._postal(cond, facts)
        if isinstance(cond, sc.SampleCondition):
            hi, lo = ULID_ALPHABET.find(facts.id[24:25]), ULID_ALPHABET.find(facts.id[25:26])
            return hi * 32 + lo < sample_threshold(cond.percentage)
        assert isinstance(cond, sc.ConstantCondition)
        return cond.matches

    # ------------------------------------------------------------------ filters

    def value_filter(self, value: Reader, flt: sc.Filter) -> bool:
        if isinstance(flt, DateFilter):
            return self.date_filter(value.date(), flt)
        kind, op, v = flt.kind, flt.operator, flt.value
        if kind in ("existence", "is_set"):
            return value.is_set() == (op == "is-set")
        if kind == "string":
            return _string(value.text(), op, v)
        if kind in ("string_array", "phone"):
            text = value.text()
            if text is None:
                return False
            if kind == "string_array":
                hit = text in v
            else:
                hit = any(text.startswith(f"+{postal_calling_code(code)}") for code in v)
            return hit if op in ("in", "phone-country-code-in") else not hit
        if kind in ("numeric", "integer"):
            number = value.number()
            return number is not None and compare_number(number, op, float(v))
        if kind == "numeric_range":
            number = value.number()
            return number is not None and flt.start <= number <= flt.end  # type: ignore[operator]
        if kind == "boolean":
            flag = value.boolean()
            return flag is not None and flag == v
        return _list(value.array(), flt)

    def date_filter(self, when: datetime | None, flt: DateFilter) -> bool:
        if when is None:
            return False
        now = self.now
        if flt.operator == "calendar-month":
            return when.month == flt.month
        if flt.operator == "anniversary-month":
            return when.month == now.month
        if flt.operator == "anniversary":
            return when.strftime("%m-%d") == now.strftime("%m-%d")
        window = flt.anniversary_window(now)
        if window is not None:
            keys = sc.anniversary_range(*window)
            if keys is None:
                return True
            key, (lo, hi) = sc.anniversary_key(when), keys
            return lo <= key <= hi if lo <= hi else (key >= lo or key <= hi)
        interval = flt.interval(now)
        assert interval is not None
        return _inside(when, interval)

    # ------------------------------------------------------------------ conditions

    def _property(self, prop: sc.PropertyRef, facts: ProfileFacts) -> Reader:
        if prop.source == "column":
            return Reader(facts.fields.get(prop.name), column=True)
        doc = facts.fields.get("location" if prop.source == "location" else "properties") or {}
        return Reader(doc.get(prop.name, _MISSING))

    def _event_passes(self, event: EventFact, filters: Sequence[sc.EventPropertyFilter]) -> bool:
        for item in filters:
            if item.filter is None:
                continue
            if item.name == "$value":
                reader = Reader(event.value, column=True)
            else:
                reader = Reader(event.properties.get(item.name, _MISSING))
            if not self.value_filter(reader, item.filter):
                return False
        return True

    def _metric(self, cond: sc.MetricCondition, facts: ProfileFacts) -> bool:
        chosen = [e for e in facts.events if e.metric_id == cond.metric_id
                  and self.date_filter(e.occurred_at, cond.timeframe) and self._event_passes(e, cond.filters)]
        if cond.measurement == "count":
            return compare_number(len(chosen), cond.operator, cond.value)
        total = round(sum((e.value or 0.0) for e in chosen), 6)
        return compare_number(total, cond.operator, cond.value)

    def _funnel(self, cond: sc.FunnelCondition, facts: ProfileFacts) -> bool:
        steps = list(cond.steps)
        positives = [i for i, step in enumerate(steps) if step.exists]
        interval = cond.timeframe.interval(self.now)
        assert interval is not None
        by_step = {i: sorted((e for e in facts.events if e.metric_id == steps[i].metric_id
                              and self._event_passes(e, steps[i].filters)), key=lambda e: e.occurred_at)
                   for i in range(len(steps))}

        def in_window(first: EventFact, other: EventFact) -> bool:
            if cond.window_seconds is None:
                return True
            return int(other.occurred_at.timestamp()) - int(first.occurred_at.timestamp()) <= cond.window_seconds

        def absent(index: int, first: EventFact | None, after: EventFact | None, before: EventFact | None) -> bool:
            for x in by_step[index]:
                if after is not None:
                    assert first is not None
                    if not (x.occurred_at > after.occurred_at and in_window(first, x)):
                        continue
                elif interval.lo is not None and not _inside(x.occurred_at, sc.Interval(interval.lo, None,
                                                                                          interval.lo_inclusive)):
                    continue
                if before is not None and not x.occurred_at < before.occurred_at:
                    continue
                return False
            return True

        def chain(k: int, first: EventFact | None, prev: EventFact | None) -> bool:
            index = positives[k]
            for event in by_step[index]:
                if prev is None:
                    if not _inside(event.occurred_at, interval):
                        continue
                    if not all(absent(i, None, None, event) for i in range(index)):
                        continue
                    head = event
                else:
                    assert first is not None
                    if not (event.occurred_at > prev.occurred_at and in_window(first, event)):
                        continue
                    if not all(absent(i, first, prev, event) for i in range(positives[k - 1] + 1, index)):
                        continue
                    head = first
                if k + 1 < len(positives):
                    if chain(k + 1, head, event):
                        return True
                elif all(absent(i, head, event, None) for i in range(index + 1, len(steps))):
                    return True
            return False

        return chain(0, None, None)

    def _consent(self, cond: sc.ConsentCondition, facts: ProfileFacts) -> bool:
        f = facts.fields
        if cond.channel == "push":
            tokens = [when for status, when in facts.push_tokens if status in PUSH_ENABLED]
            enabled = any(all(self.date_filter(when, cf.filter) for cf in cond.filters  # type: ignore[arg-type]
                              ) for when in tokens)
            return enabled == cond.can_receive
        prefix = "email" if cond.channel == "email" else "sms"
        state = f.get(f"{prefix}_consent")
        if cond.channel == "email":
            reachable = (f.get("email") is not None and f.get("email_suppression_reason") is None
                         and state != "UNSUBSCRIBED")
        else:
            reachable = f.get("phone_number") is not None and state == "SUBSCRIBED"
        if reachable != cond.can_receive:
            return False
        if cond.subscription != "any" and state != cond.subscription.upper():
            return False
        return all(self._consent_filter(prefix, cf, f) for cf in cond.filters)

    def _consent_filter(self, prefix: str, cf: sc.ConsentFilter, f: Mapping[str, Any]) -> bool:
        if cf.field == "status_date":
            assert isinstance(cf.filter, DateFilter)
            return self.date_filter(f.get(f"{prefix}_consent_timestamp"), cf.filter)
        if cf.field == "is_double_opt_in":
            assert isinstance(cf.filter, ValueFilter)
            return f.get("email_double_optin") is not None and f.get("email_double_optin") == cf.filter.value
        if cf.field == "custom_source":
            assert isinstance(cf.filter, ValueFilter)
            return f.get("email_custom_method_detail") == cf.filter.value
        if cf.field == "is_rcs_capable":
            return False
        if cf.field == "method":
            method = f.get(f"{prefix}_method")
            if method is None or _ascii_lower(method) != cf.method:
                return False
            if cf.filter is None:
                return True
            assert isinstance(cf.filter, ValueFilter)
            detail = f.get(f"{prefix}_method_detail")
            if detail is None:
                return False
            return detail in cf.filter.value if cf.filter.operator == "in" else detail == cf.filter.value
        if f.get("email_suppression_reason") != SUPPRESSION_REASON[cf.field]:
            return False
        if isinstance(cf.filter, DateFilter):
            return self.date_filter(f.get("email_suppression_timestamp"), cf.filter)
        return True

    def _membership(self, cond: sc.MembershipCondition, facts: ProfileFacts) -> bool:
        joined: list[datetime] = []
        for group in cond.group_ids:
            kind = self.group_kinds.get(group)
            when = facts.lists.get(group) if kind == "list" else \
                self.segment_member(group, facts) if kind == "segment" else None
            if when is not None:
                joined.append(when)
        if cond.timeframe is not None:
            joined = [when for when in joined if self.date_filter(when, cond.timeframe)]
        return bool(joined) == cond.is_member

    def _country(self, facts: ProfileFacts) -> str | None:
        country = (facts.fields.get("location") or {}).get("country")
        return _ascii_lower(country.strip(" ")) if isinstance(country, str) else None

    def _postal(self, cond: sc.PostalDistanceCondition, facts: ProfileFacts) -> bool:
        zip_code = (facts.fields.get("location") or {}).get("zip")
        if not isinstance(zip_code, str):
            return False
        country = self._country(facts)
        if country is not None and country not in postal.COUNTRY_NAMES[cond.country_code]:
            return False
        key = _ascii_upper(zip_code.replace(" ", ""))
        length = postal.KEY_LENGTH.get(cond.country_code)
        if length:
            key = key[:length]
        codes = postal.codes_matching(cond.country_code, cond.postal_code, cond.unit, cond.operator, cond.value)
        return key in codes


def _inside(when: datetime, interval: sc.Interval) -> bool:
    if interval.lo is not None and not (when >= interval.lo if interval.lo_inclusive else when > interval.lo):
        return False
    return interval.hi is None or (when <= interval.hi if interval.hi_inclusive else when < interval.hi)


def _string(text: str | None, op: str, v: str) -> bool:
    if text is None:
        return False
    negated = op.startswith("not-") or op == "nregex"
    positive = "regex" if op == "nregex" else op.removeprefix("not-")
    if positive == "equals":
        hit = text == v
    elif positive == "contains":
        hit = v in text
    elif positive == "starts-with":
        hit = text.startswith(v)
    elif positive == "ends-with":
        hit = text.endswith(v)
    else:
        hit = re.search(v, text) is not None
    return not hit if negated else hit


def _list(array: list[Any] | None, flt: ValueFilter) -> bool:
    if array is None:
        return False
    op, v = flt.operator, flt.value
    if flt.kind == "list_length":
        return compare_number(len(array), op.removeprefix("length-"), v)
    if flt.kind == "list_substring":
        hit = any(isinstance(e, str) and v in e for e in array)
        return hit if op == "contains-substring" else not hit
    if flt.kind == "list_contains":
        hit = any(_same_element(e, v) for e in array)
        return hit if op == "contains" else not hit
    hits = [any(_same_element(e, item) for e in array) for item in v]
    return {"contains-any": any(hits), "contains-all": all(hits), "not-contains-any": not any(hits),
            "not-contains-all": not all(hits)}[op]


def _ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def _ascii_upper(text: str) -> str:
    return "".join(chr(ord(c) - 32) if "a" <= c <= "z" else c for c in text)
