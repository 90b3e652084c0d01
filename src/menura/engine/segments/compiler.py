"""Segment definition -> one SQL boolean over the `profiles` table, per dialect, every value bound.

`Compiler(dialect, account_id, now, group_kinds).definition(d)` is used as
`SELECT profiles.id FROM profiles WHERE account_id = :a AND <it>` for a full compute and with
`profiles.id = :p` added for one profile (live updates). Time-relative filters are resolved to
bound timestamps at compile time, so the same definition compiled later moves its windows.

Semantics (shared with evaluator.py, which must agree on every profile; see
domain/segment_conditions.py for the rules taken from Klaviyo's documentation):
- metric count/sum over the metric's events in the timeframe that pass every property filter;
  a profile without such events counts 0 (so "count equals 0" matches it); sums treat events
  without a value as 0 and compare rounded to 6 decimals;
- email can receive marketing when it has an email, is not suppressed and has not unsubscribed
  (never-subscribed profiles can: the spec's "can receive, never subscribed" status says so);
  SMS when it has a phone number and SMS consent is SUBSCRIBED; push when a device token is
  enabled (AUTHORIZED or PROVISIONAL);
- funnels: some event of each positive step, in strictly increasing time, the first in the
  timeframe and all within the completion window of the first; a negative step means no such
  event between its neighbours (before the first positive step: since the timeframe's start;
  after the last: until the window's end, or ever);
- region: `location.country` as an ISO code or English name, case-insensitive; "not in region"
  is the plain negation (profiles without a country are not in the region).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import (
    Float,
    Numeric,
    String,
    and_,
    cast,
    exists,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

from menura.domain import postal_codes as postal
from menura.domain import segment_conditions as sc
from menura.domain.segment_conditions import DateFilter, ValueFilter
from menura.engine.segments import regions
from menura.engine.segments.sqlexpr import Dialect
from menura.store.event_tables import events
from menura.store.list_tables import list_members
from menura.store.profile_tables import profiles, push_tokens
from menura.store.segment_tables import segment_members

ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PUSH_ENABLED = ("AUTHORIZED", "PROVISIONAL")
SUPPRESSION_REASON = {"bounce_date": "HARD_BOUNCE", "manual_suppression_date": "USER_SUPPRESSED",
                      "invalid_email_date": "INVALID_EMAIL"}


def compare_number(left: float, operator: str, right: float) -> bool:
    """The numeric operators of the spec, in Python (shared so both sides read them the same)."""
    return {"equals": left == right, "not-equals": left != right, "greater-than": left > right,
            "greater-than-or-equal": left >= right, "less-than": left < right,
            "less-than-or-equal": left <= right}[operator]


def _compare_sql(left: Any, operator: str, right: Any) -> ColumnElement[bool]:
    return {"equals": left == right, "not-equals": left != right, "greater-than": left > right,
            "greater-than-or-equal": left >= right, "less-than": left < right,
            "less-than-or-equal": left <= right}[operator]


class Value:
    """Typed reads of one property: a profile column, or a key of a JSON column."""

    def __init__(self, d: Dialect, *, column: Any = None, doc: Any = None, key: str = "",
                 number_column: Any = None) -> None:
        self.d, self.column, self.doc, self.key, self.number_column = d, column, doc, key, number_column

    def text(self) -> Any:
        if self.doc is None:
            return self.column if self.column is not None else null()
        return self.d.json_text(self.doc, self.key)

    def text_matching(self, values: list[str]) -> Any:
        """The text for a positive equals / in, read as cheaply as the dialect allows."""
        if self.doc is None:
            return self.text()
        return self.d.json_text_matching(self.doc, self.key, values)

    def date(self) -> Any:
        if self.doc is None:
            return self.column if self.column is not None else null()
        return self.d.json_date(self.doc, self.key)

    def number(self) -> Any:
        if self.number_column is not None:
            return self.number_column
        return self.d.json_number(self.doc, self.key)

    def boolean(self) -> Any:
        return null() if self.doc is None else self.d.json_bool(self.doc, self.key)

    def array(self) -> Any:
        return null() if self.doc is None else self.d.json_array(self.doc, self.key)

    def is_set(self) -> ColumnElement[bool]:
        if self.number_column is not None:
            return self.number_column.isnot(None)
        if self.column is not None:
            return self.column.isnot(None)
        return self.d.json_is_set(self.doc, self.key)


class Compiler:
    def __init__(self, dialect: str, account_id: str, now: datetime, group_kinds: Mapping[str, str]) -> None:
        self.d = Dialect(dialect)
        self.account_id = account_id
        self.now = now
        self.group_kinds = group_kinds

    # ------------------------------------------------------------------ top level

    def definition(self, definition: sc.Definition) -> ColumnElement[bool]:
        return and_(*(or_(*(self.condition(c) for c in group)) for group in definition.groups))

    def condition(self, cond: sc.Condition) -> ColumnElement[bool]:
        if isinstance(cond, sc.PropertyCondition):
            return self._property(cond)
        if isinstance(cond, sc.MetricCondition):
            return self._metric(cond)
        if isinstance(cond, sc.FunnelCondition):
            return self._funnel(cond)
        if isinstance(cond, sc.ConsentCondition):
            return self._consent(cond)
        if isinstance(cond, sc.MembershipCondition):
            return self._membership(cond)
        if isinstance(cond, sc.RegionCondition):
            inside = self.d.in_values(self._country(), list(regions.NAMES[cond.region]))
            return inside if cond.in_region else or_(not_(inside), self._country().is_(None))
        if isinstance(cond, sc.PostalDistanceCondition):
            return self._postal(cond)
        if isinstance(cond, sc.SampleCondition):
            return self._sample(cond)
        assert isinstance(cond, sc.ConstantCondition)
        return true() if cond.matches else false()

    # ------------------------------------------------------------------ filters

    def value_filter(self, value: Value, flt: sc.Filter) -> ColumnElement[bool]:
        if isinstance(flt, DateFilter):
            return self.date_filter(value.date(), flt)
        kind, op, v = flt.kind, flt.operator, flt.value
        if kind in ("existence", "is_set"):
            return value.is_set() if op == "is-set" else not_(value.is_set())
        if kind == "string":
            if op == "equals":
                return value.text_matching([v]) == literal(v, String)
            return self._string(value.text(), op, v)
        if kind == "string_array":
            if op == "in":
                return self.d.in_values(value.text_matching(list(v)), list(v))
            text = value.text()
            return and_(text.isnot(None), not_(self.d.in_values(text, list(v))))
        if kind == "phone":
            text = value.text()
            prefixes = [f"+{postal_calling_code(code)}" for code in v]
            hit = or_(false(), *(self.d.starts_with(text, p) for p in prefixes))
            return hit if op == "phone-country-code-in" else and_(text.isnot(None), not_(hit))
        if kind in ("numeric", "integer"):
            return _compare_sql(value.number(), op, literal(float(v), Float))
        if kind == "numeric_range":
            number = value.number()
            return and_(number >= literal(flt.start, Float), number <= literal(flt.end, Float))
        if kind == "boolean":
            return value.boolean() == (1 if v else 0)
        return self._list(value.array(), flt)

    def _string(self, text: Any, op: str, v: str) -> ColumnElement[bool]:
        negated = op.startswith("not-") or op == "nregex"
        positive = "regex" if op == "nregex" else op.removeprefix("not-")
        if positive == "equals":
            hit = text == literal(v, String)
        elif positive == "contains":
            hit = self.d.contains(text, v)
        elif positive == "starts-with":
            hit = self.d.starts_with(text, v)
        elif positive == "ends-with":
            hit = self.d.ends_with(text, v)
        else:
            hit = self.d.regex(text, v)
        if negated:
            return and_(text.isnot(None), not_(hit))
        return hit

    def _list(self, array: Any, flt: ValueFilter) -> ColumnElement[bool]:
        op, v = flt.operator, flt.value
        present = array.isnot(None)
        if flt.kind == "list_length":
            return and_(present, _compare_sql(self.d.array_length(array), op.removeprefix("length-"), v))
        if flt.kind == "list_substring":
            hit = self.d.array_has_substring(array, v)
            return and_(present, hit if op == "contains-substring" else not_(hit))
        if flt.kind == "list_contains":
            hit = self.d.array_has(array, v)
            return and_(present, hit if op == "contains" else not_(hit))
        hits = [self.d.array_has(array, item) for item in v]
        any_hit = or_(false(), *hits)
        all_hit = and_(true(), *hits)
        chosen = {"contains-any": any_hit, "contains-all": all_hit, "not-contains-any": not_(any_hit),
                  "not-contains-all": not_(all_hit)}[op]
        return and_(present, chosen)

    def date_filter(self, when: Any, flt: DateFilter) -> ColumnElement[bool]:
        d, now = self.d, self.now
        present = when.isnot(None)
        if flt.operator == "calendar-month":
            return and_(present, d.month(when) == flt.month)
        if flt.operator == "anniversary-month":
            return and_(present, d.month(when) == now.month)
        if flt.operator == "anniversary":
            return and_(present, d.day_key(when) == now.strftime("%m-%d"))
        window = flt.anniversary_window(now)
        if window is not None:
            keys = sc.anniversary_range(*window)
            if keys is None:
                return present
            key, (lo, hi) = d.anniversary_key(when), keys
            inside = and_(key >= lo, key <= hi) if lo <= hi else or_(key >= lo, key <= hi)
            return and_(present, inside)
        interval = flt.interval(now)
        assert interval is not None
        return and_(present, *self._interval(when, interval))

    def _interval(self, when: Any, interval: sc.Interval) -> list[ColumnElement[bool]]:
        out = []
        if interval.lo is not None:
            lo = self.d.timestamp(interval.lo)
            out.append(when >= lo if interval.lo_inclusive else when > lo)
        if interval.hi is not None:
            hi = self.d.timestamp(interval.hi)
            out.append(when <= hi if interval.hi_inclusive else when < hi)
        return out

    # ------------------------------------------------------------------ conditions

    def _property(self, cond: sc.PropertyCondition) -> ColumnElement[bool]:
        prop = cond.prop
        if prop.source == "column":
            value = Value(self.d, column=profiles.c[prop.name])
        else:
            doc = profiles.c.location if prop.source == "location" else profiles.c.properties
            value = Value(self.d, doc=doc, key=prop.name)
        return self.value_filter(value, cond.filter)

    def _event_filters(self, table: Any, filters: tuple[sc.EventPropertyFilter, ...]) -> list[ColumnElement[bool]]:
        out = []
        for item in filters:
            if item.filter is None:
                continue
            if item.name == "$value":
                value = Value(self.d, number_column=table.c.value)
            else:
                value = Value(self.d, doc=table.c.properties, key=item.name)
            out.append(self.value_filter(value, item.filter))
        return out

    def _metric(self, cond: sc.MetricCondition) -> ColumnElement[bool]:
        e = events.alias("e")
        where = [e.c.account_id == self.account_id, e.c.metric_id == cond.metric_id,
                 self.date_filter(e.c.occurred_at, cond.timeframe), *self._event_filters(e, cond.filters)]
        if cond.measurement == "count":
            measure: Any = func.count()
            bound: Any = literal(cond.value, Float)
        else:
            measure = self.d.round6(func.coalesce(func.sum(e.c.value), 0.0))
            bound = cast(literal(cond.value, Float), Numeric) if self.d.pg else literal(cond.value, Float)
        passes = _compare_sql(measure, cond.operator, bound)
        grouped = select(e.c.profile_id).where(*where).group_by(e.c.profile_id)
        if compare_number(0, cond.operator, cond.value):
            # Profiles without events pass: exclude exactly those whose events make it fail.
            return profiles.c.id.notin_(grouped.having(not_(passes)))
        return profiles.c.id.in_(grouped.having(passes))

    def _funnel(self, cond: sc.FunnelCondition) -> ColumnElement[bool]:
        steps = list(cond.steps)
        positives = [i for i, step in enumerate(steps) if step.exists]
        aliases = {i: events.alias(f"f{i}") for i in positives}
        first = aliases[positives[0]]
        interval = cond.timeframe.interval(self.now)
        assert interval is not None

        def step_rows(table: Any, step: sc.FunnelStep) -> list[ColumnElement[bool]]:
            return [table.c.profile_id == profiles.c.id, table.c.account_id == self.account_id,
                    table.c.metric_id == step.metric_id, *self._event_filters(table, step.filters)]

        def within_window(table: Any) -> list[ColumnElement[bool]]:
            if cond.window_seconds is None:
                return []
            return [self.d.epoch_seconds(table.c.occurred_at) - self.d.epoch_seconds(first.c.occurred_at)
                    <= cond.window_seconds]

        def absent(index: int, after: Any | None, before: Any | None) -> ColumnElement[bool]:
            x = events.alias(f"n{index}")
            where = step_rows(x, steps[index])
            if after is not None:
                where.append(x.c.occurred_at > after.c.occurred_at)
                where += within_window(x)
            elif interval.lo is not None:
                where += self._interval(x.c.occurred_at, sc.Interval(interval.lo, None, interval.lo_inclusive))
            if before is not None:
                where.append(x.c.occurred_at < before.c.occurred_at)
            outer = [t for t in (first, after, before) if t is not None]
            return not_(exists(select(literal(1)).select_from(x).where(*where).correlate(profiles, *outer)))

        def chain(k: int) -> ColumnElement[bool]:
            index = positives[k]
            table, prev = aliases[index], aliases[positives[k - 1]] if k else None
            where = step_rows(table, steps[index])
            if prev is None:
                where += self._interval(table.c.occurred_at, interval)
                where += [absent(i, None, table) for i in range(index)]
            else:
                where += [table.c.occurred_at > prev.c.occurred_at, *within_window(table)]
                where += [absent(i, prev, table) for i in range(positives[k - 1] + 1, index)]
            if k + 1 < len(positives):
                where.append(chain(k + 1))
            else:
                where += [absent(i, table, None) for i in range(index + 1, len(steps))]
            outer = [aliases[positives[j]] for j in range(k)]
            return exists(select(literal(1)).select_from(table).where(*where).correlate(profiles, *outer))

        return chain(0)

    def _consent(self, cond: sc.ConsentCondition) -> ColumnElement[bool]:
        p = profiles.c
        if cond.channel == "push":
            token = push_tokens.alias("pt")
            rows = [token.c.profile_id == p.id, token.c.enablement_status.in_(PUSH_ENABLED)]
            for cf in cond.filters:
                assert isinstance(cf.filter, DateFilter)
                rows.append(self.date_filter(token.c.recorded_date, cf.filter))
            enabled = exists(select(literal(1)).select_from(token).where(*rows))
            return enabled if cond.can_receive else not_(enabled)
        prefix = "email" if cond.channel == "email" else "sms"
        state = p[f"{prefix}_consent"]
        if cond.channel == "email":
            reachable = and_(p.email.isnot(None), p.email_suppression_reason.is_(None), state != "UNSUBSCRIBED")
        else:
            reachable = and_(p.phone_number.isnot(None), state == "SUBSCRIBED")
        parts = [reachable if cond.can_receive else not_(reachable)]
        if cond.subscription != "any":
            parts.append(state == cond.subscription.upper())
        parts += [self._consent_filter(prefix, cf) for cf in cond.filters]
        return and_(*parts)

    def _consent_filter(self, prefix: str, cf: sc.ConsentFilter) -> ColumnElement[bool]:
        p = profiles.c
        if cf.field == "status_date":
            assert isinstance(cf.filter, DateFilter)
            return self.date_filter(p[f"{prefix}_consent_timestamp"], cf.filter)
        if cf.field == "is_double_opt_in":
            assert isinstance(cf.filter, ValueFilter)
            return p.email_double_optin == cf.filter.value
        if cf.field == "custom_source":
            assert isinstance(cf.filter, ValueFilter)
            return p.email_custom_method_detail == literal(cf.filter.value, String)
        if cf.field == "is_rcs_capable":
            return false()  # RCS capability is not known for any number
        if cf.field == "method":
            method = p[f"{prefix}_method"]
            parts = [func.lower(method) == literal(cf.method, String)]
            if cf.filter is not None:
                assert isinstance(cf.filter, ValueFilter)
                detail = p[f"{prefix}_method_detail"]
                parts.append(self.d.in_values(detail, list(cf.filter.value)) if cf.filter.operator == "in"
                             else detail == literal(cf.filter.value, String))
            return and_(*parts)
        reason = p.email_suppression_reason == SUPPRESSION_REASON[cf.field]
        if isinstance(cf.filter, DateFilter):
            return and_(reason, self.date_filter(p.email_suppression_timestamp, cf.filter))
        return reason

    def _membership(self, cond: sc.MembershipCondition) -> ColumnElement[bool]:
        list_ids = [g for g in cond.group_ids if self.group_kinds.get(g) == "list"]
        segment_ids = [g for g in cond.group_ids if self.group_kinds.get(g) == "segment"]
        parts = []
        if list_ids:
            rows = [list_members.c.list_id.in_(list_ids)]
            if cond.timeframe is not None:
                rows.append(self.date_filter(list_members.c.joined_group_at, cond.timeframe))
            parts.append(profiles.c.id.in_(select(list_members.c.profile_id).where(*rows)))
        if segment_ids:
            rows = [segment_members.c.segment_id.in_(segment_ids)]
            if cond.timeframe is not None:
                rows.append(self.date_filter(segment_members.c.joined_at, cond.timeframe))
            parts.append(profiles.c.id.in_(select(segment_members.c.profile_id).where(*rows)))
        member = or_(false(), *parts)
        return member if cond.is_member else not_(member)

    def _country(self) -> Any:
        text = self.d.json_text(profiles.c.location, "country")
        return func.lower(func.trim(text))

    def _postal(self, cond: sc.PostalDistanceCondition) -> ColumnElement[bool]:
        codes = postal.codes_matching(cond.country_code, cond.postal_code, cond.unit, cond.operator, cond.value)
        zip_text = self.d.json_text(profiles.c.location, "zip")
        key = func.upper(func.replace(zip_text, " ", ""))
        length = postal.KEY_LENGTH.get(cond.country_code)
        if length:
            key = func.substr(key, 1, length)
        country = self._country()
        same_country = or_(country.is_(None), self.d.in_values(country, list(postal.COUNTRY_NAMES[cond.country_code])))
        return and_(zip_text.isnot(None), same_country, self.d.in_values(key, list(codes)))

    def _sample(self, cond: sc.SampleCondition) -> ColumnElement[bool]:
        alphabet = literal(ULID_ALPHABET, String)
        pos = func.strpos if self.d.pg else func.instr
        hi = pos(alphabet, func.substr(profiles.c.id, 25, 1)) - 1
        lo = pos(alphabet, func.substr(profiles.c.id, 26, 1)) - 1
        return hi * 32 + lo < sample_threshold(cond.percentage)


def sample_threshold(percentage: int) -> int:
    """Profiles whose last two ULID characters (random bits) read below this are in the sample."""
    return percentage * 1024 // 100


def postal_calling_code(region: str) -> int:
    """E.164 calling codes are prefix-free, so "+<code>" at the start names the country's plan
    (countries sharing a plan, like US and CA under +1, are not told apart)."""
    return int(phonenumbers.country_code_for_region(region))
