"""query_campaign_values, proven against hand counts: two campaigns are sent (captured in the outbox),
then opens, clicks, a bounce, an unsubscribe and orders are recorded through delivery's own outcome
functions at known times, and every statistic is checked against the count worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from menura.clock import SystemClock
from menura.delivery import outcomes
from menura.domain import accounts
from menura.domain import campaign_jobs as jobs
from menura.domain import campaign_reports as reports
from menura.domain import tags as tag_rules
from menura.domain.events import NewEvent, record_events
from menura.domain.segment_reports import Timeframe
from menura.engine.campaigns import dispatcher  # noqa: F401  (registers the send handler)
from menura.store import metrics as metric_store
from menura.store.delivery_tables import outbound_messages
from menura.worker import Worker
from tests.e2e import campaign_fixtures as cf
from tests.engine_fixtures import ControlledClock, scratch_db
from tests.spec import assert_matches_spec

T0 = datetime(2031, 5, 1, 9, 0, tzinfo=UTC)
db = scratch_db  # the fixture, on each backend
ALL = list(reports.STATISTICS)


def _send(db, clock, account_id, campaign_id):
    jobs.send_campaign(db, account_id, campaign_id, clock.now())
    Worker(db, clock, lease_clock=SystemClock(), kinds=[jobs.SEND_KIND]).run_once()


def _messages(db, account_id):
    with db.read() as conn:
        rows = conn.execute(select(outbound_messages).where(outbound_messages.c.account_id == account_id)).all()
    return {(r.attribution["$campaign"], r.profile_id): r for r in rows}


def test_values_match_hand_counts(db):
    clock = ControlledClock(T0)
    account_id = accounts.create_account(db, T0, name="Report shop").account_id
    a, b, c, d = cf.seed_profiles(db, account_id, T0, [{"email": f"{n}@example.com"} for n in "abcd"])
    everyone = cf.seed_list(db, account_id, T0, [a, b, c, d], "Everyone")
    pair = cf.seed_list(db, account_id, T0, [a, b], "Pair")
    x, x_message = cf.seed_campaign(db, account_id, T0, [everyone], name="X")
    _send(db, clock, account_id, x)
    clock.current = T0 + timedelta(days=1)
    y, _y_message = cf.seed_campaign(db, account_id, clock.now(), [pair], name="Y")
    _send(db, clock, account_id, y)
    sent = _messages(db, account_id)
    assert len(sent) == 6

    def at(hours: float) -> datetime:
        return T0 + timedelta(hours=hours)

    with db.write() as conn:
        outcomes.record_open(conn, sent[(x, a)], at(1))
        outcomes.record_open(conn, sent[(x, a)], at(2))
        outcomes.record_open(conn, sent[(x, b)], at(3))
        outcomes.record_click(conn, sent[(x, a)], "https://shop.example.com/a", at(2))
        outcomes.record_click(conn, sent[(x, c)], "https://shop.example.com/c", at(4))
        outcomes.record_click(conn, sent[(x, c)], "https://shop.example.com/c2", at(5))
        outcomes.record_bounce(conn, sent[(x, d)], kind="hard", source="dsn", now=at(0.5), diagnostic="5.1.1")
        outcomes.unsubscribe(conn, sent[(x, c)], now=at(6), method_detail="test")
        outcomes.record_open(conn, sent[(y, a)], at(30))
        record_events(conn, account_id, [
            NewEvent(a, "Placed Order", {}, at(3), value=50.0, unique_id="o1"),      # 1 h after A clicked X
            NewEvent(b, "Placed Order", {}, at(3 + 24 * 6), value=20.0, unique_id="o2"),  # 6 days after: too late
            NewEvent(c, "Placed Order", {}, at(7), value=30.0, unique_id="o3"),      # 2 h after C clicked X
            NewEvent(c, "Placed Order", {}, at(8), value=10.0, unique_id="o4"),      # C again, still X
            NewEvent(a, "Placed Order", {}, at(31), value=100.0, unique_id="o5"),    # after A opened Y: Y's
            NewEvent(d, "Placed Order", {}, at(2), value=70.0, unique_id="o6"),      # never engaged
        ], at(40))
    tag = tag_rules.create_tag(db, account_id, T0, name="spring", group_id=None)
    tag_rules.tag_resources(db, account_id, T0, tag.id, "campaign", [x])
    with db.read() as conn:
        metric_id = next(m for m in metric_store.get_metrics(conn, account_id, _metric_ids(conn, account_id))
                         if m.name == "Placed Order").id
        frame = Timeframe(T0 - timedelta(days=1), T0 + timedelta(days=7))
        results = reports.values_report(conn, account_id, frame, ALL, list(reports.DEFAULT_GROUP_BY), metric_id, [])
    by_campaign = {r["groupings"]["campaign_id"]: r for r in results}
    assert by_campaign[x]["groupings"] == {"campaign_id": x, "campaign_message_id": x_message, "send_channel": "email"}
    sx, sy = by_campaign[x]["statistics"], by_campaign[y]["statistics"]
    # X: sent to a, b, c, d; d's message bounced later (a DSN), so 3 of 4 were delivered.
    assert (sx["recipients"], sx["delivered"], sx["bounced"], sx["failed"]) == (4, 3, 1, 0)
    assert sx["delivery_rate"] == 0.75 and sx["bounce_rate"] == 0.25 and sx["bounced_or_failed"] == 1
    assert (sx["opens"], sx["opens_unique"], sx["clicks"], sx["clicks_unique"]) == (3, 2, 3, 2)
    assert sx["open_rate"] == round(2 / 3, 6) and sx["click_rate"] == round(2 / 3, 6)
    assert sx["click_to_open_rate"] == 1.0
    assert (sx["unsubscribes"], sx["unsubscribe_uniques"], sx["unsubscribe_rate"]) == (1, 1, round(1 / 3, 6))
    # Conversions: a's first order (50) and c's two orders (30 + 10); b's came too late, d never engaged,
    # a's second order followed a's open of Y.
    assert (sx["conversions"], sx["conversion_uniques"], sx["conversion_value"]) == (3, 2, 90.0)
    assert sx["average_order_value"] == 30.0 and sx["revenue_per_recipient"] == 22.5
    assert sx["conversion_rate"] == round(2 / 3, 6)
    # Y: sent to a and b, opened by a, one attributed order of 100.
    assert (sy["recipients"], sy["delivered"], sy["opens"], sy["opens_unique"], sy["clicks"]) == (2, 2, 1, 1, 0)
    assert (sy["conversions"], sy["conversion_value"], sy["open_rate"]) == (1, 100.0, 0.5)

    with db.read() as conn:
        tagged = reports.values_report(conn, account_id, frame, ["recipients"],
                                       ["campaign_id", "campaign_message_id", "tag_name"], metric_id, [])
        assert tagged == [{"groupings": {"campaign_id": x, "campaign_message_id": x_message, "tag_name": "spring"},
                           "statistics": {"recipients": 4}}]
        only_y = reports.values_report(conn, account_id, frame, ["recipients"], ["campaign_id", "campaign_message_id"],
                                       metric_id, reports.parse_filter(f"equals(campaign_id,'{y}')"))
        assert [r["groupings"]["campaign_id"] for r in only_y] == [y]
        spring = reports.values_report(conn, account_id, frame, ["recipients"], ["campaign_id", "campaign_message_id"],
                                       metric_id, reports.parse_filter("contains-any(tag_name,['spring'])"))
        assert [r["groupings"]["campaign_id"] for r in spring] == [x]
        # Performance is by send date: a frame that starts after X was sent leaves it out.
        later = Timeframe(T0 + timedelta(hours=12), T0 + timedelta(days=7))
        assert [r["groupings"]["campaign_id"] for r in reports.values_report(
            conn, account_id, later, ["recipients"], ["campaign_id", "campaign_message_id"], metric_id, [])] == [y]


def _metric_ids(conn, account_id):
    from menura.store.event_tables import metrics

    return list(conn.execute(select(metrics.c.id).where(metrics.c.account_id == account_id)).scalars())


def test_query_campaign_values_over_http(sdk, http):
    people = [cf.profile(http, f"rep{i}@example.com") for i in range(2)]
    list_id = cf.new_list(http, members=people)
    campaign_id, message_id = cf.ready_email_campaign(http, [list_id], name="Reported")
    cf.send(http, campaign_id)
    cf.wait_sent(http, campaign_id)
    order = http.post("/api/events", json={"data": {"type": "event", "attributes": {
        "properties": {}, "value": 12.5, "metric": {"data": {"type": "metric", "attributes": {"name": "Placed Order"}}},
        "profile": {"data": {"type": "profile", "attributes": {"email": "rep0@example.com"}}}}}})
    assert order.status_code == 202, order.text
    metric_id = cf.wait_for(lambda: next((m["id"] for m in http.get("/api/metrics").json()["data"]
                                          if m["attributes"]["name"] == "Placed Order"), None))
    body = {"data": {"type": "campaign-values-report", "attributes": {
        "statistics": ["recipients", "delivered", "open_rate", "conversions"], "timeframe": {"key": "last_30_days"},
        "conversion_metric_id": metric_id}}}
    response = http.post("/api/campaign-values-reports", json=body)
    assert response.status_code == 200, response.text
    assert_matches_spec("query_campaign_values", 200, response.json())
    results = response.json()["data"]["attributes"]["results"]
    mine = [r for r in results if r["groupings"]["campaign_id"] == campaign_id]
    assert mine == [{"groupings": {"campaign_id": campaign_id, "campaign_message_id": message_id,
                                   "send_channel": "email"},
                     "statistics": {"recipients": 2, "delivered": 2, "open_rate": 0.0, "conversions": 0}}]
    assert response.json()["data"]["relationships"]["campaigns"]["data"][0]["type"] == "campaign"
    report = sdk.Reporting.query_campaign_values(body)
    assert any(r.groupings["campaign_id"] == campaign_id for r in report.data.attributes.results)

    def error(attributes: dict, status: int = 400) -> dict:
        bad = http.post("/api/campaign-values-reports", json={"data": {"type": "campaign-values-report",
                                                                       "attributes": attributes}})
        assert bad.status_code == status, bad.text
        assert_matches_spec("query_campaign_values", status, bad.json())
        return bad.json()["errors"][0]

    base = body["data"]["attributes"]
    assert error({**base, "statistics": ["bogus"]})["source"]["pointer"] == "/data/attributes/statistics/0"
    assert error({**base, "group_by": ["send_channel"]})["source"]["pointer"] == "/data/attributes/group_by"
    assert error({**base, "timeframe": {"key": "forever"}})["source"]["pointer"] == "/data/attributes/timeframe/key"
    assert error({**base, "conversion_metric_id": "NoSuch"}, 404)["source"]["pointer"] == \
        "/data/attributes/conversion_metric_id"
    assert error({**base, "filter": "or(equals(campaign_id,'a'),equals(campaign_id,'b'))"})["source"]["pointer"] \
        == "/data/attributes/filter"
    missing = {k: v for k, v in base.items() if k != "conversion_metric_id"}
    assert error(missing)["source"]["pointer"] == "/data/attributes/conversion_metric_id"


def test_grouped_by_the_list_or_segment_each_recipient_came_through(db):
    clock = ControlledClock(T0)
    account_id = accounts.create_account(db, T0, name="Group shop").account_id
    a, b, c, d = cf.seed_profiles(db, account_id, T0, [{"email": f"g{n}@example.com"} for n in "abcd"])
    vip = cf.seed_list(db, account_id, T0, [a, b], "VIP")
    everyone = cf.seed_list(db, account_id, T0, [a, b, c, d], "Everyone")
    # a and b are in both lists: the campaign reaches them through VIP, its first audience.
    z, z_message = cf.seed_campaign(db, account_id, T0, [vip, everyone], name="Z")
    _send(db, clock, account_id, z)
    sent = _messages(db, account_id)
    at = T0 + timedelta(hours=1)
    with db.write() as conn:
        outcomes.record_open(conn, sent[(z, a)], at)
        outcomes.record_open(conn, sent[(z, a)], at + timedelta(minutes=5))
        outcomes.record_click(conn, sent[(z, c)], "https://shop.example.com/c", at)
        outcomes.record_bounce(conn, sent[(z, d)], kind="hard", source="dsn", now=at, diagnostic="5.1.1")
        record_events(conn, account_id, [NewEvent(c, "Placed Order", {}, at + timedelta(hours=1), value=40.0,
                                                  unique_id="g1")], at + timedelta(hours=2))
        metric_id = next(m for m in metric_store.get_metrics(conn, account_id, _metric_ids(conn, account_id))
                         if m.name == "Placed Order").id
    frame = Timeframe(T0 - timedelta(days=1), T0 + timedelta(days=7))
    stats = ["recipients", "delivered", "bounced", "opens", "opens_unique", "clicks_unique", "conversion_value"]
    with db.read() as conn:
        results = reports.values_report(conn, account_id, frame, stats,
                                        ["campaign_id", "campaign_message_id", "group", "group_name"], metric_id, [])
        plain = reports.values_report(conn, account_id, frame, stats, ["campaign_id", "campaign_message_id"],
                                      metric_id, [])
    assert results == [
        {"groupings": {"campaign_id": z, "campaign_message_id": z_message, "group": group, "group_name": name},
         "statistics": figures}
        for group, name, figures in sorted([
            (vip, "VIP", {"recipients": 2, "delivered": 2, "bounced": 0, "opens": 2, "opens_unique": 1,
                          "clicks_unique": 0, "conversion_value": 0.0}),
            (everyone, "Everyone", {"recipients": 2, "delivered": 1, "bounced": 1, "opens": 0, "opens_unique": 0,
                                    "clicks_unique": 1, "conversion_value": 40.0})])]
    # The groups add up to the message's figures.
    assert plain[0]["statistics"] == {"recipients": 4, "delivered": 3, "bounced": 1, "opens": 2, "opens_unique": 1,
                                      "clicks_unique": 1, "conversion_value": 40.0}
    # The group is not an event property.
    assert not any(k.startswith("_menura") for r in sent.values() for k in outcomes.properties(r))


def test_sms_segments_credits_and_spend(db):
    clock = ControlledClock(T0)
    account_id = accounts.create_account(db, T0, name="Text shop").account_id
    subscribed = "SUBSCRIBED"
    us, ca, uk = cf.seed_profiles(db, account_id, T0, [
        # "Text shop: Hi Al": GSM-7, 16 characters: 1 segment, 1 credit (US).
        {"phone_number": "+12025550101", "first_name": "Al", "sms_consent": subscribed},
        # 16 + 150 = 166 GSM-7 characters: 2 segments of 153, 3 credits each (Canada, Toronto's 416).
        {"phone_number": "+14165550102", "first_name": "B" * 150, "sms_consent": subscribed},
        # An emoji makes it UCS-2: 16 + 3 + 2 code units <= 70: 1 segment, 5 credits (United Kingdom).
        {"phone_number": "+447700900123", "first_name": "Zoë😀", "sms_consent": subscribed}])
    everyone = cf.seed_list(db, account_id, T0, [us, ca, uk], "Texters")
    campaign_id, _ = cf.seed_campaign(db, account_id, T0, [everyone], channel="sms", name="Texts",
                                      render_options={"add_info_link": False})
    _send(db, clock, account_id, campaign_id)
    bodies = {pid: _sms_body(row) for (_, pid), row in _messages(db, account_id).items()}
    assert bodies == {us: "Text shop: Hi Al", ca: "Text shop: Hi " + "B" * 150, uk: "Text shop: Hi Zoë😀"}
    stats = ["recipients", "message_segment_count_sum", "text_message_credit_usage_amount", "text_message_spend",
             "text_message_roi"]
    frame = Timeframe(T0 - timedelta(days=1), T0 + timedelta(days=7))
    with db.read() as conn:
        metric_id = _metric_ids(conn, account_id)[0]
        [row] = reports.values_report(conn, account_id, frame, stats, list(reports.DEFAULT_GROUP_BY), metric_id, [],
                                      credit_price=0.0125)
        [unpriced] = reports.values_report(conn, account_id, frame, stats, list(reports.DEFAULT_GROUP_BY), metric_id,
                                           [])
    assert row["groupings"]["send_channel"] == "sms"
    assert row["statistics"] == {"recipients": 3, "message_segment_count_sum": 4,
                                 "text_message_credit_usage_amount": 12, "text_message_spend": 0.15,
                                 "text_message_roi": 0.0}
    assert unpriced["statistics"]["text_message_spend"] == 0.0
    assert unpriced["statistics"]["text_message_credit_usage_amount"] == 12


def _sms_body(row) -> str:
    import json

    from menura.delivery.sending import decompress

    return json.loads(decompress(row.raw_z))["body"]


def test_group_by_group_over_http(http):
    people = [cf.profile(http, f"grp{i}@example.com") for i in range(2)]
    first, second = cf.new_list(http, "First", [people[0]]), cf.new_list(http, "Second", people)
    campaign_id, message_id = cf.ready_email_campaign(http, [first, second], name="Grouped")
    cf.send(http, campaign_id)
    cf.wait_sent(http, campaign_id)
    metric_id = cf.wait_for(lambda: next((m["id"] for m in http.get("/api/metrics").json()["data"]
                                          if m["attributes"]["name"] == "Received Email"), None))
    body = {"data": {"type": "campaign-values-report", "attributes": {
        "statistics": ["recipients"], "timeframe": {"key": "last_30_days"}, "conversion_metric_id": metric_id,
        "group_by": ["campaign_id", "campaign_message_id", "group", "group_name"],
        "filter": f"equals(campaign_id,'{campaign_id}')"}}}
    response = http.post("/api/campaign-values-reports", json=body)
    assert response.status_code == 200, response.text
    assert_matches_spec("query_campaign_values", 200, response.json())
    results = response.json()["data"]["attributes"]["results"]
    assert sorted(results, key=lambda r: r["groupings"]["group_name"]) == [
        {"groupings": {"campaign_id": campaign_id, "campaign_message_id": message_id, "group": first,
                       "group_name": "First"}, "statistics": {"recipients": 1}},
        {"groupings": {"campaign_id": campaign_id, "campaign_message_id": message_id, "group": second,
                       "group_name": "Second"}, "statistics": {"recipients": 1}}]
