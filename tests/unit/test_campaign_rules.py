"""Campaign rules without a database: send strategies and when a send starts, due times per
strategy, smart send time, who may receive a channel, the audience merge by cursor, shards, the
per-revision shapes, and report statistics."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from menura.api import campaign_revisions as shapes
from menura.api.campaign_bodies import LegacySendStrategy, LegacyStaticOptions, TrackingOptions
from menura.domain import campaign_jobs as jobs
from menura.domain import campaign_reports as reports
from menura.domain import campaigns as rules
from menura.engine.campaigns import audience, dispatcher, schedule
from menura.engine.campaigns import smart_send_time as sto
from menura.jsonapi.errors import ApiError

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- strategies


def test_strategies_are_normalized_to_utc_and_default_to_immediate():
    assert rules.check_send_strategy(None) == {"method": "immediate"}
    static = rules.check_send_strategy({"method": "static", "datetime": "2030-06-02T10:00:00+02:00"})
    assert static == {"method": "static", "datetime": "2030-06-02T08:00:00+00:00", "options": None}
    local = rules.check_send_strategy({"method": "static", "datetime": "2030-06-02T10:00:00Z",
                                       "options": {"is_local": True}})
    assert local["options"] == {"is_local": True, "send_past_recipients_immediately": False}
    assert rules.check_send_strategy({"method": "smart_send_time", "date": "2030-06-03"}) == {
        "method": "smart_send_time", "date": "2030-06-03"}


@pytest.mark.parametrize("strategy, pointer", [
    ({"method": "static"}, "/datetime"),
    ({"method": "static", "datetime": "2030-06-02T10:00:00"}, "/datetime"),  # no offset
    ({"method": "throttled", "datetime": "2030-06-02T10:00:00Z"}, "/throttle_percentage"),
    ({"method": "throttled", "datetime": "2030-06-02T10:00:00Z", "throttle_percentage": 3}, "/throttle_percentage"),
    ({"method": "smart_send_time"}, "/date"),
    ({"method": "hourly"}, "/method"),
])
def test_bad_strategies_point_at_the_culprit(strategy, pointer):
    with pytest.raises(ApiError) as err:
        rules.check_send_strategy(strategy)
    assert err.value.pointer == "/data/attributes/send_strategy" + pointer


def test_start_plan_per_strategy():
    assert jobs.start_plan({"method": "immediate"}, NOW) == jobs.StartPlan(NOW, NOW, False)
    later = NOW + timedelta(hours=3)
    static = {"method": "static", "datetime": later.isoformat()}
    assert jobs.start_plan(static, NOW) == jobs.StartPlan(later, later, True)
    with pytest.raises(ApiError):
        jobs.start_plan({"method": "static", "datetime": (NOW - timedelta(seconds=1)).isoformat()}, NOW)
    # Local time: the earliest time zone (UTC+14) reaches 09:00 at 19:00 UTC the day before.
    local = {"method": "static", "datetime": "2030-06-03T09:00:00+00:00", "options": {"is_local": True}}
    assert jobs.start_plan(local, NOW).start_at == datetime(2030, 6, 2, 19, 0, tzinfo=UTC)
    # Already 09:00 in some zones, but not in the latest (UTC-12): still allowed, starting now.
    today = {**local, "datetime": "2030-06-01T09:00:00+00:00"}
    assert jobs.start_plan(today, NOW) == jobs.StartPlan(NOW, datetime(2030, 6, 1, 9, 0, tzinfo=UTC), False)
    with pytest.raises(ApiError):
        jobs.start_plan({**local, "datetime": "2030-05-31T09:00:00+00:00"}, NOW)
    sto_plan = jobs.start_plan({"method": "smart_send_time", "date": "2030-06-03"}, NOW)
    assert sto_plan.start_at == datetime(2030, 6, 2, 10, 0, tzinfo=UTC) and sto_plan.scheduled
    with pytest.raises(ApiError):
        jobs.start_plan({"method": "smart_send_time", "date": "2030-05-30"}, NOW)


# --------------------------------------------------------------------------- due times


def _profiles(*zones):
    return [SimpleNamespace(id=f"p{i}", location={"timezone": z} if z else None) for i, z in enumerate(zones)]


def test_throttled_waves(monkeypatch):
    strategy = {"method": "throttled", "datetime": NOW.isoformat(), "throttle_percentage": 10}
    facts = schedule.prepare(None, "acct", strategy, 95, NOW)
    assert facts["per_hour"] == 10  # ceil(9.5)
    people = _profiles(*[None] * 25)
    due = schedule.due_times(None, "acct", strategy, facts, people[10:], 10, NOW)
    assert due["p10"] == NOW + timedelta(hours=1) and due["p19"] == NOW + timedelta(hours=1)
    assert due["p20"] == NOW + timedelta(hours=2)


def test_local_times_follow_each_zone_and_its_daylight_saving(monkeypatch):
    monkeypatch.setattr(schedule, "account_zone", lambda conn, account_id: ZoneInfo("Europe/London"))
    strategy = {"method": "static", "datetime": "2030-06-01T18:00:00+00:00",
                "options": {"is_local": True, "send_past_recipients_immediately": False}}
    people = _profiles("America/New_York", None, "Asia/Tokyo", "Not/AZone")
    due = schedule.due_times(None, "acct", strategy, {}, people, 0, NOW)
    assert due["p0"] == datetime(2030, 6, 1, 22, 0, tzinfo=UTC)  # EDT, UTC-4
    assert due["p1"] == datetime(2030, 6, 1, 17, 0, tzinfo=UTC)  # the account's zone: BST, UTC+1
    assert due["p2"] is None  # 18:00 in Tokyo (09:00 UTC) has passed
    assert due["p3"] == due["p1"]  # an unknown zone falls back to the account's
    passed = dict(strategy, options={"is_local": True, "send_past_recipients_immediately": True})
    assert schedule.due_times(None, "acct", passed, {}, people, 0, NOW)["p2"] == NOW


def test_best_hour_needs_history_and_prefers_the_earlier_hour_on_a_tie():
    zone = ZoneInfo("UTC")
    times = [datetime(2030, 5, d, h, tzinfo=UTC) for d, h in ((1, 20), (2, 20), (3, 8), (4, 8))]
    assert sto.best_hour(times[:2], zone) is None
    assert sto.best_hour(times, zone) == 8
    assert sto.best_hour(times, ZoneInfo("Asia/Tokyo")) == 5  # 20:00 UTC is 05:00 in Tokyo
    assert sto.at_local("2030-03-31", 10, ZoneInfo("Europe/Paris")) == datetime(2030, 3, 31, 8, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- recipients


def _profile(**values):
    base = {"email": "a@example.com", "phone_number": None, "email_consent": "NEVER_SUBSCRIBED",
            "email_suppression_reason": None, "sms_consent": "NEVER_SUBSCRIBED"}
    return SimpleNamespace(**{**base, **values})


def test_who_may_receive_each_channel():
    assert audience.can_receive(_profile(), "email") is None  # implicit consent for email
    assert audience.can_receive(_profile(email_consent="UNSUBSCRIBED"), "email") == "unsubscribed"
    assert audience.can_receive(_profile(email_suppression_reason="HARD_BOUNCE"), "email") == "suppressed"
    assert audience.can_receive(_profile(email=None), "email") == "no_email"
    assert audience.can_receive(_profile(phone_number="+15005550006"), "sms") == "no_sms_consent"
    assert audience.can_receive(_profile(phone_number="+15005550006", sms_consent="SUBSCRIBED"), "sms") is None
    assert audience.can_receive(_profile(), "mobile_push") == "channel_not_configured"


def test_audience_batches_merge_sources_by_cursor_without_gaps_or_repeats(monkeypatch):
    rng = random.Random(7)
    universe = sorted(f"{i:05d}" for i in range(600))
    sizes = {("list", "L1"): 250, ("list", "L2"): 300, ("segment", "S1"): 120, ("segment", "OUT"): 90}
    sources = {key: sorted(rng.sample(universe, size)) for key, size in sizes.items()}

    def member_ids_after(conn, kind, group_id, after, limit):
        return [pid for pid in sources[(kind, group_id)] if after is None or pid > after][:limit]

    def members_among(conn, kind, group_ids, profile_ids):
        return {pid for g in group_ids for pid in sources[(kind, g)] if pid in set(profile_ids)}

    monkeypatch.setattr(audience.store, "member_ids_after", member_ids_after)
    monkeypatch.setattr(audience.store, "members_among", members_among)
    aud = audience.Audience("acct", {"list": ("L1", "L2"), "segment": ("S1",)}, {"list": (), "segment": ("OUT",)})
    seen = [pid for batch in audience.iterate(None, aud, 37) for pid in batch]
    expected = sorted((set(sources[("list", "L1")]) | set(sources[("list", "L2")]) | set(sources[("segment", "S1")]))
                      - set(sources[("segment", "OUT")]))
    assert seen == expected


def test_shards_cover_every_profile_id_once():
    for shards in (1, 2, 3, 5):
        parts = [dispatcher.partition(k, shards) for k in range(shards)]
        if shards == 1:
            assert parts == [None]
            continue
        letters = [c for part in parts for c in part]
        assert sorted(letters) == sorted("0123456789ABCDEFGHJKMNPQRSTVWXYZ")


# --------------------------------------------------------------------------- revisions


def test_legacy_strategy_and_tracking_round_trip():
    legacy = LegacySendStrategy("static", options_static=LegacyStaticOptions("2030-06-02T10:00:00Z", True, False))
    current = shapes._legacy_strategy_in(legacy)
    assert current == {"method": "static", "datetime": "2030-06-02T10:00:00Z",
                       "options": {"is_local": True, "send_past_recipients_immediately": False}}
    canonical = rules.check_send_strategy(current)
    assert shapes._legacy_strategy_out(canonical)["options_static"] == {
        "datetime": "2030-06-02T10:00:00+00:00", "is_local": True, "send_past_recipients_immediately": False}
    old = TrackingOptions(is_add_utm=True, utm_params=[])
    assert shapes._tracking_in(old, "2024-07-15")["add_tracking_params"] is True
    row = SimpleNamespace(tracking_options={"add_tracking_params": True, "custom_tracking_params": [
        {"type": "static", "name": "a", "value": "b"}], "is_tracking_opens": True, "is_tracking_clicks": True})
    assert shapes._tracking_out(row, "2024-07-15") == {"is_add_utm": True, "utm_params": [{"name": "a", "value": "b"}],
                                                       "is_tracking_opens": True, "is_tracking_clicks": True}
    assert shapes.shape("2024-10-15") == shapes.LEGACY and shapes.shape("2025-04-15") == shapes.CURRENT
    assert shapes.shape("2026-10-15") == shapes.OMNI


# --------------------------------------------------------------------------- reports


def test_report_statistics_and_rates():
    counts = reports.Counts()
    counts.events.update(recipients=10, delivered=8, bounced=2, opens=6, clicks=3, unsubscribes=1)
    counts.uniques.update(opens=4, clicks=2, unsubscribes=1)
    counts.conversions, counts.conversion_value, counts.conversion_profiles = 3, 150.0, {"a", "b"}
    stats = reports._statistics(counts, reports.STATISTICS)
    assert stats["delivery_rate"] == 0.8 and stats["bounce_rate"] == 0.2
    assert stats["open_rate"] == 0.5 and stats["click_rate"] == 0.25 and stats["click_to_open_rate"] == 0.5
    assert stats["conversion_rate"] == 0.25 and stats["average_order_value"] == 50.0
    assert stats["revenue_per_recipient"] == 15.0
    empty = reports._statistics(reports.Counts(), ["open_rate", "average_order_value"])
    assert empty == {"open_rate": 0.0, "average_order_value": 0.0}


def test_report_requests_are_checked():
    assert reports.check_group_by(None) == ["campaign_id", "campaign_message_id", "send_channel"]
    with pytest.raises(ApiError):
        reports.check_group_by(["campaign_id"])
    assert reports.check_group_by(["campaign_id", "campaign_message_id", "group", "group_name"]) == [
        "campaign_id", "campaign_message_id", "group", "group_name"]
    with pytest.raises(ApiError) as bad:
        reports.check_group_by(["campaign_id", "campaign_message_id", "audience"])
    assert bad.value.pointer == "/data/attributes/group_by/2"
    conditions = reports.parse_filter("equals(send_channel,'email'),contains-all(tag_id,['a','b'])")
    assert [c.field for c in conditions] == ["send_channel", "tag_id"]
    for bad in ("or(equals(send_channel,'email'),equals(send_channel,'sms'))",
                "equals(send_channel,'email'),contains-any(send_channel,['sms'])", "equals(bogus,'x')"):
        with pytest.raises(ApiError) as err:
            reports.parse_filter(bad)
        assert err.value.pointer == "/data/attributes/filter"


def test_message_content_is_kept_to_its_channel():
    with pytest.raises(ApiError) as err:
        rules.check_message(rules.MessageInput("email", content={"body": "x"}), "/m")
    assert err.value.pointer == "/m/content/body"
    sms = rules.check_message(rules.MessageInput("sms", label="dropped", content={"body": "x"},
                                                 render_options={"add_org_prefix": False}), "/m")
    assert sms.label is None and sms.render_options == {**rules.RENDER_OPTION_DEFAULTS, "add_org_prefix": False}
    with pytest.raises(ApiError):
        rules.check_message(rules.MessageInput("email", content={"from_email": "nope"}), "/m")
