"""The segment engine's SQL (compiler.py) against an independent Python reading of the same
definitions (evaluator.py): random profiles, events, list memberships, push tokens and random
definitions of every condition type; both must pick exactly the same profiles, on SQLite and on
PostgreSQL. Seeded, bounded (a few seconds per database)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select
from ulid import ULID

from menura.clock import SystemClock
from menura.domain import segment_conditions as sc
from menura.engine.segments import live
from menura.engine.segments.compiler import Compiler
from menura.engine.segments.evaluator import Evaluator, EventFact, ProfileFacts
from menura.store import segments as store
from menura.store.event_tables import events, metrics
from menura.store.list_tables import list_members, lists
from menura.store.profile_tables import profiles, push_tokens
from menura.store.segment_tables import segment_members

SEED = 20240605
PROFILES = 70
DEFINITIONS = 160
KEYS = ("plan", "age", "vip", "tags", "birthday", 'odd "key" ü')
WORDS = ("gold", "Gold", "silver", "go", "", "ld", "a%b", "x_y")
ZIPS = [("02139", "US"), ("02138-1234", "United States"), ("10001", "us"), ("94105", None), ("2000", "AU"),
        ("M5V 2T6", "CA"), ("99999", "US"), (None, "DE"), ("02139", "FR")]


def _when(rng: random.Random, now: datetime, days: int = 400) -> datetime:
    return (now - timedelta(seconds=rng.randint(-86400 * 20, 86400 * days))).replace(microsecond=0)


def _date_text(rng: random.Random, now: datetime) -> Any:
    when = _when(rng, now, 3000)
    return rng.choice([when.date().isoformat(), when.isoformat().replace("+00:00", "Z"),
                       when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+02:00"), "2024-02-30", "soon", 17])


def _value(rng: random.Random, key: str, now: datetime) -> Any:
    choices: list[Any] = [None, rng.choice(WORDS), rng.randint(-3, 40), rng.random() * 10, rng.choice([True, False]),
                          [rng.choice(WORDS) for _ in range(rng.randint(0, 3))] + rng.choice([[], [3], [True]]),
                          _date_text(rng, now)]
    if key == "tags":
        return rng.choice(choices[5:6] * 3 + choices)
    if key == "birthday":
        return _date_text(rng, now)
    return rng.choice(choices)


def _populate(conn: Any, rng: random.Random, account_id: str, now: datetime) -> dict[str, Any]:
    metric_ids = []
    for name in ("Placed Order", "Viewed Product", "Opened Email"):
        metric_id = str(ULID())[-8:]
        conn.execute(insert(metrics).values(id=metric_id, account_id=account_id, name=name, service="api",
                                            integration_name="API", integration_category="API", created=now,
                                            updated=now))
        metric_ids.append(metric_id)
    list_ids = []
    for name in ("L1", "L2"):
        list_id = str(ULID())[-6:]
        conn.execute(insert(lists).values(id=list_id, account_id=account_id, name=name, opt_in_process="single_opt_in",
                                          created=now, updated=now))
        list_ids.append(list_id)
    profile_ids = []
    for index in range(PROFILES):
        pid = str(ULID())
        profile_ids.append(pid)
        zip_code, country = rng.choice(ZIPS)
        location = rng.choice([None, {"zip": zip_code, "country": country, "city": rng.choice(WORDS)}])
        props = {key: _value(rng, key, now) for key in KEYS if rng.random() < 0.7}
        email_state = rng.choice(["SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED"])
        conn.execute(insert(profiles).values(
            id=pid, account_id=account_id, email=rng.choice([f"p{index}@x.io", None, f"P{index}@gold.io"]),
            phone_number=rng.choice([None, f"+1617555{index:04d}", f"+4477009{index:05d}", f"+61{index:09d}"]),
            first_name=rng.choice([None, *WORDS]), location=location, properties=props,
            created=_when(rng, now, 800), updated=now, last_event_date=rng.choice([None, _when(rng, now)]),
            email_consent=email_state, email_consent_timestamp=rng.choice([None, _when(rng, now)]),
            email_method=rng.choice([None, "API", "FORM", "preference_page"]),
            email_method_detail=rng.choice([None, "1234", "form-9", "https://x.io/p"]),
            email_custom_method_detail=rng.choice([None, "popup"]), email_double_optin=rng.choice([None, True, False]),
            email_suppression_reason=rng.choice([None, None, "HARD_BOUNCE", "USER_SUPPRESSED", "INVALID_EMAIL"]),
            email_suppression_timestamp=_when(rng, now),
            sms_consent=rng.choice(["SUBSCRIBED", "UNSUBSCRIBED", "NEVER_SUBSCRIBED"]),
            sms_consent_timestamp=rng.choice([None, _when(rng, now)]), sms_method=rng.choice([None, "checkout"])))
        for _ in range(rng.randint(0, 8)):
            conn.execute(insert(events).values(
                id=str(ULID()), account_id=account_id, metric_id=rng.choice(metric_ids), profile_id=pid,
                occurred_at=_when(rng, now), received_at=now, value=rng.choice([None, round(rng.random() * 90, 2)]),
                properties={k: _value(rng, k, now) for k in KEYS[:4] if rng.random() < 0.6}))
        for list_id in list_ids:
            if rng.random() < 0.4:
                conn.execute(insert(list_members).values(list_id=list_id, profile_id=pid, account_id=account_id,
                                                         joined_group_at=_when(rng, now, 200)))
        if rng.random() < 0.3:
            conn.execute(insert(push_tokens).values(
                id=str(ULID()), account_id=account_id, profile_id=pid, token=f"t-{pid}", platform="ios",
                vendor="apns", enablement_status=rng.choice(["AUTHORIZED", "DENIED"]), background="AVAILABLE",
                created=now, recorded_date=_when(rng, now)))
    return {"metrics": metric_ids, "lists": list_ids, "profiles": profile_ids}


# --------------------------------------------------------------------------- random definitions


def _date_filter(rng: random.Random, now: datetime, kinds: tuple[str, ...]) -> dict[str, Any]:
    kind = rng.choice(kinds)
    unit = rng.choice(["hour", "day", "week"])
    stamp = _when(rng, now).isoformat()
    later = (datetime.fromisoformat(stamp) + timedelta(days=rng.randint(1, 200))).isoformat()
    return {
        "static": {"type": "date", "operator": rng.choice(["after", "before"]), "date": stamp},
        "range": {"type": "date", "operator": "between-static", "start": stamp, "end": later},
        "relative": {"type": "date", "operator": rng.choice(["in-the-last", "at-least", "in-the-next"]),
                     "unit": unit, "quantity": rng.randint(1, 60)},
        "anniversary_rel": {"type": "date", "operator": rng.choice(["anniversary-last", "anniversary-next"]),
                            "unit": unit, "quantity": rng.randint(1, 60)},
        "between": {"type": "date", "operator": "between", "start": rng.randint(0, 10), "end": rng.randint(10, 90),
                    "unit": unit},
        "alltime": {"type": "date", "operator": "alltime"},
        "calendar": {"type": "date", "operator": "calendar-month", "value": rng.randint(1, 12)},
        "anniversary": {"type": "date", "operator": rng.choice(["anniversary", "anniversary-month"])},
    }[kind]


def _value_filter(rng: random.Random, families: tuple[str, ...]) -> dict[str, Any]:
    family = rng.choice(families)
    word = rng.choice(WORDS)
    if family == "string":
        op = rng.choice(["contains", "ends-with", "equals", "not-contains", "not-ends-with", "not-equals",
                         "not-starts-with", "regex", "nregex", "starts-with"])
        value = rng.choice(["^g", "o.d$", "[Ss]il"]) if "regex" in op else word
        return {"type": "string", "operator": op, "value": value}
    if family == "string_array":
        return {"type": "string", "operator": rng.choice(["in", "not-in"]), "value": rng.sample(WORDS, 2)}
    if family == "numeric":
        return {"type": "numeric", "operator": rng.choice(["equals", "greater-than", "greater-than-or-equal",
                                                           "less-than", "less-than-or-equal", "not-equals"]),
                "value": rng.choice([0, 3, 5.5, 20])}
    if family == "boolean":
        return {"type": "boolean", "operator": "equals", "value": rng.choice([True, False])}
    if family == "existence":
        return {"type": "existence", "operator": rng.choice(["is-set", "not-set"])}
    if family == "list_set":
        return {"type": "list", "operator": rng.choice(["contains-all", "contains-any", "not-contains-all",
                                                        "not-contains-any"]), "value": rng.sample(WORDS, 2)}
    if family == "list_length":
        return {"type": "list", "operator": rng.choice(["length-equals", "length-greater-than",
                                                        "length-less-than-or-equal"]), "value": rng.randint(0, 3)}
    if family == "list_substring":
        return {"type": "list", "operator": rng.choice(["contains-substring", "not-contains-substring"]),
                "value": rng.choice(["ol", "x"])}
    return {"type": "list", "operator": rng.choice(["contains", "not-contains"]), "value": rng.choice([word, 3])}


PROFILE_FAMILIES = ("string", "string_array", "numeric", "boolean", "existence", "list_length", "list_contains")
EVENT_FAMILIES = ("string", "string_array", "numeric", "boolean", "existence", "list_set", "list_length",
                  "list_substring")
DATE_KINDS = ("static", "range", "relative", "anniversary_rel", "between", "calendar", "anniversary")


def _condition(rng: random.Random, now: datetime, data: dict[str, Any], base: str) -> dict[str, Any]:
    kind = rng.choice(["property", "property", "date_property", "metric", "metric", "funnel", "consent", "member",
                       "region", "postal", "phone"])
    if kind == "property":
        prop = rng.choice([f"properties['{k}']" for k in KEYS] + ["first_name", "email", "location['city']"])
        families = PROFILE_FAMILIES if prop.startswith("properties") else ("string", "string_array", "existence")
        return {"type": "profile-property", "property": prop, "filter": _value_filter(rng, families)}
    if kind == "date_property":
        prop = rng.choice(["properties['birthday']", "created", "last_event_date", "properties['plan']"])
        return {"type": "profile-property", "property": prop, "filter": _date_filter(rng, now, DATE_KINDS)}
    if kind == "phone":
        return {"type": "profile-property", "property": "phone_number",
                "filter": {"type": "string", "operator": rng.choice(["phone-country-code-in",
                                                                     "phone-country-code-not-in"]),
                           "value": rng.sample(["US", "GB", "AU", "FR"], 2)}}
    if kind == "metric":
        filters = [{"property": rng.choice((*KEYS[:4], "$value")), "filter": _value_filter(rng, EVENT_FAMILIES)}
                   for _ in range(rng.choice([0, 0, 1, 2]))]
        return {"type": "profile-metric", "metric_id": rng.choice(data["metrics"]),
                "measurement": rng.choice(["count", "sum"]),
                "measurement_filter": {"type": "numeric", "operator": rng.choice(
                    ["equals", "greater-than", "greater-than-or-equal", "less-than", "less-than-or-equal",
                     "not-equals"]), "value": rng.choice([0, 1, 2, 3, 50.5])},
                "timeframe_filter": _date_filter(rng, now, ("static", "range", "relative", "anniversary_rel",
                                                            "between", "alltime")),
                "metric_filters": filters or None}
    if kind == "funnel":
        steps = [{"metric_exists": rng.random() < 0.75, "metric_id": rng.choice(data["metrics"])}
                 for _ in range(rng.randint(2, 3))]
        steps[0]["metric_exists"] = True
        return {"type": "profile-metric-funnel",
                "timeframe_filter": _date_filter(rng, now, ("range", "between", "relative")),
                "completion_window_seconds": rng.choice([None, "DAYS_30", "DAYS_90", "YEARS_1"]), "steps": steps}
    if kind == "consent":
        return {"type": "profile-marketing-consent", "consent": rng.choice(_consents(rng, now))}
    if kind == "member":
        groups = rng.sample([*data["lists"], base], rng.randint(1, 2))
        cond: dict[str, Any] = {"type": "profile-group-membership", "is_member": rng.random() < 0.6,
                                "group_ids": groups}
        if cond["is_member"] and rng.random() < 0.5:
            cond["timeframe_filter"] = _date_filter(rng, now, ("static", "range", "relative", "between"))
        return cond
    if kind == "region":
        return {"type": "profile-region", "in_region": rng.random() < 0.5,
                "region": rng.choice(["united_states", "european_union"])}
    return {"type": "profile-postal-code-distance", "country_code": "US", "postal_code": "02139",
            "unit": rng.choice(["miles", "kilometers"]),
            "filter": {"type": "numeric", "operator": rng.choice(["less-than", "greater-than"]),
                       "value": rng.choice([5, 300, 3000])}}


def _consents(rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    status = {"field": "status_date", "filter": _date_filter(rng, now, ("static", "relative", "calendar"))}
    bounce = {"field": rng.choice(["bounce_date", "manual_suppression_date", "invalid_email_date"]),
              "filter": rng.choice([{"type": "existence", "operator": "is-set"},
                                    _date_filter(rng, now, ("static", "relative"))])}
    return [
        {"channel": "email", "can_receive_marketing": True, "consent_status": {"subscription": "any"}},
        {"channel": "email", "can_receive_marketing": True, "consent_status": {
            "subscription": "subscribed", "filters": [status, {"field": "method", "method": "api",
                                                               "filter": {"type": "string", "operator": "in",
                                                                          "value": ["1234"]}}][:rng.randint(0, 2)]}},
        {"channel": "email", "can_receive_marketing": True, "consent_status": {
            "subscription": "subscribed", "filters": [{"field": "is_double_opt_in", "filter": {
                "type": "boolean", "operator": "equals", "value": True}}]}},
        {"channel": "email", "can_receive_marketing": True, "consent_status": {"subscription": "never_subscribed"}},
        {"channel": "email", "can_receive_marketing": False, "consent_status": {"subscription": "any",
                                                                                 "filters": [bounce]}},
        {"channel": "email", "can_receive_marketing": False, "consent_status": {
            "subscription": "unsubscribed", "filters": [{"field": "method", "method": "preference_page"}]}},
        {"channel": "email", "can_receive_marketing": False, "consent_status": {"subscription": "subscribed",
                                                                                 "filters": [bounce]}},
        {"channel": "sms", "can_receive_marketing": True, "consent_status": {"subscription": "subscribed",
                                                                              "filters": [status]}},
        {"channel": "sms", "can_receive_marketing": False, "consent_status": {"subscription": "never_subscribed"}},
        {"channel": "push", "can_receive_marketing": rng.random() < 0.5, "consent_status": {"subscription": "any"}},
    ]


def _definition(rng: random.Random, now: datetime, data: dict[str, Any], base: str) -> dict[str, Any]:
    groups = [{"conditions": [_condition(rng, now, data, base) for _ in range(rng.randint(1, 2))]}
              for _ in range(rng.randint(1, 2))]
    return {"condition_groups": groups}


# --------------------------------------------------------------------------- the comparison


def _facts(conn: Any, account_id: str) -> dict[str, ProfileFacts]:
    out = {row.id: ProfileFacts(row.id, dict(row._mapping)) for row in
           conn.execute(select(profiles).where(profiles.c.account_id == account_id))}
    for row in conn.execute(select(events).where(events.c.account_id == account_id)):
        facts = out[row.profile_id]
        facts.events = [*facts.events, EventFact(row.metric_id, row.occurred_at, row.value, row.properties)]
    for row in conn.execute(select(list_members).where(list_members.c.account_id == account_id)):
        out[row.profile_id].lists = {**out[row.profile_id].lists, row.list_id: row.joined_group_at}
    for row in conn.execute(select(push_tokens).where(push_tokens.c.account_id == account_id)):
        out[row.profile_id].push_tokens = [*out[row.profile_id].push_tokens, (row.enablement_status,
                                                                               row.recorded_date)]
    return out


def test_engine_matches_the_python_evaluator(server, account):
    rng = random.Random(SEED)
    now = SystemClock().now().replace(microsecond=0)
    with server.db.write() as conn:
        data = _populate(conn, rng, account.id, now)
    base_raw = {"condition_groups": [{"conditions": [
        {"type": "profile-property", "property": "properties['plan']",
         "filter": {"type": "string", "operator": "contains", "value": "ol"}},
        {"type": "profile-group-membership", "is_member": True, "group_ids": [data["lists"][0]]}]}]}
    base_id = "B" + str(ULID())[-5:]
    with server.db.write() as conn:
        store.insert_segment(conn, {"id": base_id, "account_id": account.id, "name": "base", "definition": base_raw,
                                    "dependencies": sc.dependencies(sc.parse_definition(base_raw)).to_json(),
                                    "is_active": True, "is_starred": False, "is_processing": False, "version": 1,
                                    "created": now, "updated": now})
        live.recompute(conn, store.get_segment(conn, account.id, base_id), now)
    kinds = {lid: "list" for lid in data["lists"]} | {base_id: "segment"}
    with server.db.read() as conn:
        facts = _facts(conn, account.id)
        base_members = {r.profile_id: r.joined_at for r in conn.execute(
            select(segment_members).where(segment_members.c.segment_id == base_id))}
    evaluator = Evaluator(now, kinds, lambda sid, f: base_members.get(f.id) if sid == base_id else None)
    assert set(base_members) == {pid for pid, f in facts.items()
                                 if evaluator.matches(sc.parse_definition(base_raw), f)}

    checked = informative = 0
    seen_kinds: set[str] = set()
    for _ in range(DEFINITIONS):
        raw = _definition(rng, now, data, base_id)
        definition = sc.parse_definition(raw)
        seen_kinds.update(type(c).__name__ for c in definition.conditions())
        condition = Compiler(server.db.dialect, account.id, now, kinds).definition(definition)
        with server.db.read() as conn:
            engine = store.matching_profile_ids(conn, account.id, condition)
        python = {pid for pid, f in facts.items() if evaluator.matches(definition, f)}
        if engine != python:
            pytest.fail(f"engine and evaluator disagree on {sorted(engine ^ python)[:5]} for\n"
                        f"{json.dumps(raw, indent=1)}")
        checked += 1
        informative += 0 < len(engine) < len(facts)
    assert checked == DEFINITIONS
    # Most definitions must split the profiles, or agreeing would prove little.
    assert informative > DEFINITIONS // 2, informative
    assert seen_kinds >= {"PropertyCondition", "MetricCondition", "FunnelCondition", "ConsentCondition",
                          "MembershipCondition", "RegionCondition", "PostalDistanceCondition"}
