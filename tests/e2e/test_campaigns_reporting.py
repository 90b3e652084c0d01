"""query_campaign_values, proven against hand counts: two campaigns are sent (captured in the outbox),
then opens, clicks, a bounce, an unsubscribe and orders are recorded through delivery's own outcome
functions at known times, and every statistic is checked against the count worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
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
from tests import work_fixtures as wf
from tests.e2e import campaign_fixtures as cf
from tests.spec import assert_matches_spec

T0 = datetime(2031, 5, 1, 9, 0, tzinfo=UTC)
ALL = list(reports.STATISTICS)


class Clock:
    virtual = False

    def __init__(self) -> None:
        self.current = T0

    def now(self) -> datetime:
        return self.current


@pytest.fixture(params=wf.BACKENDS)
def db(request, tmp_path):
    with wf.open_test_database(request.param, tmp_path) as scratch:
        yield scratch.db


def _send(db, clock, account_id, campaign_id):
    jobs.send_campaign(db, account_id, campaign_id, clock.now())
    Worker(db, clock, lease_clock=SystemClock(), kinds=[jobs.SEND_KIND]).run_once()


def _messages(db, account_id):
    with db.read() as conn:
        rows = conn.execute(select(outbound_messages).where(outbound_messages.c.account_id == account_id)).all()
    return {(r.attribution["$campaign"], r.profile_id): r for r in rows}


def test_values_match_hand_counts(db):
    clock = Clock()
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
