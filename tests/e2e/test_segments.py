"""Segments category end to end through the official SDK: create (background compute), read, list
(filters, sorts, pages, include), update (definition recompute, deactivation), delete, members,
tags, flow triggers, live membership on events, profile changes and list changes, and the 400s
of invalid definitions. Bodies validated against Klaviyo's spec."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from openapi_client.exceptions import ApiException

from menura.clock import SystemClock
from menura.domain.events import record_event
from tests.spec import assert_matches_spec


def create_profile(http: httpx.Client, **attributes) -> str:
    response = http.post("/api/profiles", json={"data": {"type": "profile", "attributes": attributes}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def record(server, account, profile_id: str, metric: str, *, when: datetime | None = None,
           value: float | None = None, **properties) -> str:
    """Record an event the way every write path does (hooks run in its transaction); its metric id."""
    now = SystemClock().now()
    with server.db.write() as conn:
        record_event(conn, account_id=account.id, profile_id=profile_id, metric_name=metric,
                     properties=properties, time=when or now, now=now, value=value)
    with server.db.read() as conn:
        from menura.store.event_tables import metrics

        return conn.execute(metrics.select().where(metrics.c.account_id == account.id,
                                                   metrics.c.name == metric)).first().id


def segment_body(name: str, groups: list[list[dict]], **attributes) -> dict:
    definition = {"condition_groups": [{"conditions": conditions} for conditions in groups]}
    return {"data": {"type": "segment", "attributes": {"name": name, "definition": definition, **attributes}}}


def placed_order(metric_id: str, at_least: int = 2, days: int = 90) -> dict:
    return {"type": "profile-metric", "metric_id": metric_id, "measurement": "count",
            "measurement_filter": {"type": "numeric", "operator": "greater-than-or-equal", "value": at_least},
            "timeframe_filter": {"type": "date", "operator": "in-the-last", "quantity": days, "unit": "day"}}


def email_subscribed() -> dict:
    return {"type": "profile-marketing-consent",
            "consent": {"channel": "email", "can_receive_marketing": True, "consent_status": {"subscription": "any"}}}


def country_is(country: str) -> dict:
    return {"type": "profile-property", "property": "location['country']",
            "filter": {"type": "string", "operator": "equals", "value": country}}


def wait_computed(http: httpx.Client, segment_id: str, timeout: float = 15.0) -> dict:
    deadline = time.time() + timeout
    while True:
        body = http.get(f"/api/segments/{segment_id}", params={"additional-fields[segment]": "profile_count"}).json()
        if not body["data"]["attributes"]["is_processing"]:
            return body
        assert time.time() < deadline, "segment was never computed"
        time.sleep(0.05)


def member_ids(http: httpx.Client, segment_id: str) -> set[str]:
    response = http.get(f"/api/segments/{segment_id}/relationships/profiles", params={"page[size]": 100})
    assert response.status_code == 200, response.text
    assert_matches_spec("get_profile_ids_for_segment", 200, response.json())
    return {item["id"] for item in response.json()["data"]}


def error_of(response: httpx.Response, status: int = 400) -> dict:
    assert response.status_code == status, response.text
    assert_matches_spec("create_segment", status, response.json())
    return response.json()["errors"][0]


# --------------------------------------------------------------------------- lifecycle


def test_segment_lifecycle_through_the_sdk(sdk, http, server, account):
    buyer = create_profile(http, email="buyer@x.io", location={"country": "US"})
    once = create_profile(http, email="once@x.io", location={"country": "US"})
    abroad = create_profile(http, email="abroad@x.io", location={"country": "FR"})
    for pid in (buyer, buyer, once, abroad, abroad):
        metric_id = record(server, account, pid, "Placed Order", when=SystemClock().now() - timedelta(days=3,
                                                                                                      seconds=len(pid)))
    record(server, account, buyer, "Placed Order", when=SystemClock().now() - timedelta(days=1))
    body = segment_body("Repeat US buyers", [[placed_order(metric_id)], [email_subscribed()], [country_is("US")]],
                        is_starred=True)

    created = sdk.Segments.create_segment(body)
    segment_id = created.data.id
    raw = http.get(f"/api/segments/{segment_id}").json()
    assert_matches_spec("create_segment", 201, {"data": raw["data"], "links": raw["links"]})
    assert created.data.attributes.name == "Repeat US buyers"
    assert created.data.attributes.is_starred is True and created.data.attributes.is_active is True

    got = wait_computed(http, segment_id)
    assert_matches_spec("get_segment", 200, got)
    assert got["data"]["attributes"]["profile_count"] == 1
    assert got["data"]["attributes"]["definition"] == body["data"]["attributes"]["definition"]
    assert member_ids(http, segment_id) == {buyer}
    sdk_got = sdk.Segments.get_segment(segment_id, additional_fields_segment=["profile_count"])
    assert sdk_got.data.attributes.profile_count == 1

    profiles = sdk.Segments.get_profiles_for_segment(segment_id)
    assert [p.id for p in profiles.data] == [buyer]
    raw_profiles = http.get(f"/api/segments/{segment_id}/profiles").json()
    assert_matches_spec("get_profiles_for_segment", 200, raw_profiles)
    assert raw_profiles["data"][0]["attributes"]["email"] == "buyer@x.io"
    assert raw_profiles["data"][0]["attributes"]["joined_group_at"]
    assert [p.id for p in sdk.Segments.get_profile_ids_for_segment(segment_id).data] == [buyer]
    # The Profiles category reads the same membership.
    of_profile = http.get(f"/api/profiles/{buyer}/segments").json()
    assert_matches_spec("get_segments_for_profile", 200, of_profile)
    assert [s["id"] for s in of_profile["data"]] == [segment_id]
    assert [s.id for s in sdk.Profiles.get_segment_ids_for_profile(buyer).data] == [segment_id]

    # The other profile buys again: live, in the event's own transaction.
    record(server, account, once, "Placed Order", when=SystemClock().now() - timedelta(hours=1))
    assert member_ids(http, segment_id) == {buyer, once}
    # A profile change re-evaluates too.
    moved = http.patch(f"/api/profiles/{once}", json={"data": {"type": "profile", "id": once,
                                                                "attributes": {"location": {"country": "CA"}}}})
    assert moved.status_code == 200, moved.text
    assert member_ids(http, segment_id) == {buyer}

    updated = sdk.Segments.update_segment(segment_id, {"data": {"type": "segment", "id": segment_id,
                                                                "attributes": {"name": "Repeat buyers",
                                                                               "is_starred": False}}})
    assert updated.data.attributes.name == "Repeat buyers" and updated.data.attributes.is_starred is False
    # A new definition is recomputed in the background.
    new_body = segment_body("x", [[placed_order(metric_id)]])["data"]["attributes"]["definition"]
    sdk.Segments.update_segment(segment_id, {"data": {"type": "segment", "id": segment_id,
                                                      "attributes": {"definition": new_body}}})
    wait_computed(http, segment_id)
    assert member_ids(http, segment_id) == {buyer, once, abroad}

    sdk.Segments.delete_segment(segment_id)
    with pytest.raises(ApiException) as err:
        sdk.Segments.get_segment(segment_id)
    assert err.value.status == 404


def test_listing_filters_sorts_pages_and_includes(sdk, http, server, account):
    ids = []
    for index in range(12):
        created = http.post("/api/segments", json=segment_body(f"seg-{index:02d}", [[email_subscribed()]],
                                                               is_starred=index % 2 == 0))
        assert created.status_code == 201, created.text
        ids.append(created.json()["data"]["id"])
    first = http.get("/api/segments", params={"sort": "name"})
    assert first.status_code == 200
    body = first.json()
    assert_matches_spec("get_segments", 200, body)
    assert [item["attributes"]["name"] for item in body["data"]] == [f"seg-{i:02d}" for i in range(10)]
    second = http.get(body["links"]["next"]).json()
    assert [item["attributes"]["name"] for item in second["data"]] == ["seg-10", "seg-11"]
    assert "next" not in second["links"]
    starred = http.get("/api/segments", params={"filter": "equals(is_starred,true)"}).json()
    assert len(starred["data"]) == 6
    named = sdk.Segments.get_segments(filter="any(name,['seg-03','seg-07'])", sort="-name")
    assert [s.attributes.name for s in named.data] == ["seg-07", "seg-03"]
    sparse = http.get("/api/segments", params={"fields[segment]": "name", "filter": f"equals(id,'{ids[0]}')"}).json()
    assert sparse["data"][0]["attributes"] == {"name": "seg-00"}
    bad = http.get("/api/segments", params={"filter": "equals(definition,'x')"})
    assert bad.status_code == 400 and bad.json()["errors"][0]["source"] == {"parameter": "filter"}
    too_big = http.get("/api/segments", params={"page[size]": 11})
    assert too_big.status_code == 400

    tag = http.post("/api/tags", json={"data": {"type": "tag", "attributes": {"name": "vip"}}}).json()["data"]
    sdk.Tags.tag_segments(tag["id"], {"data": [{"type": "segment", "id": ids[0]}]})
    included = http.get(f"/api/segments/{ids[0]}", params={"include": "tags,flow-triggers"}).json()
    assert_matches_spec("get_segment", 200, included)
    assert included["data"]["relationships"]["tags"]["data"] == [{"type": "tag", "id": tag["id"]}]
    assert included["data"]["relationships"]["flow-triggers"]["data"] == []
    assert [t.id for t in sdk.Segments.get_tags_for_segment(ids[0]).data] == [tag["id"]]
    tag_ids = http.get(f"/api/segments/{ids[0]}/relationships/tags").json()
    assert_matches_spec("get_tag_ids_for_segment", 200, tag_ids)
    assert tag_ids["data"] == [{"type": "tag", "id": tag["id"]}]
    assert sdk.Segments.get_flows_triggered_by_segment(ids[0]).data == []
    flows = http.get(f"/api/segments/{ids[0]}/relationships/flow-triggers").json()
    assert_matches_spec("get_ids_for_flows_triggered_by_segment", 200, flows)
    assert flows["data"] == []
    assert_matches_spec("get_flows_triggered_by_segment", 200,
                        http.get(f"/api/segments/{ids[0]}/flow-triggers").json())
    assert_matches_spec("get_tags_for_segment", 200, http.get(f"/api/segments/{ids[0]}/tags").json())


def test_other_accounts_segments_are_404(http, server, other_account):
    from tests.conftest import REVISION

    created = http.post("/api/segments", json=segment_body("mine", [[email_subscribed()]]))
    segment_id = created.json()["data"]["id"]
    headers = {"Authorization": f"Klaviyo-API-Key {other_account.key}", "revision": REVISION}
    with httpx.Client(base_url=server.url, headers=headers) as other:
        for path in ("", "/profiles", "/relationships/profiles", "/tags", "/relationships/tags", "/flow-triggers"):
            assert other.get(f"/api/segments/{segment_id}{path}").status_code == 404
        assert other.delete(f"/api/segments/{segment_id}").status_code == 404
        patched = other.patch(f"/api/segments/{segment_id}", json={"data": {"type": "segment", "id": segment_id,
                                                                         "attributes": {"name": "x"}}})
        assert patched.status_code == 404
        assert other.get("/api/segments").json()["data"] == []


# --------------------------------------------------------------------------- list and segment membership


def test_segments_follow_lists_and_other_segments(http, server, account):
    alice = create_profile(http, email="alice@x.io")
    bob = create_profile(http, email="bob@x.io")
    made = http.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": "Newsletter"}}})
    list_id = made.json()["data"]["id"]
    in_list = {"type": "profile-group-membership", "is_member": True, "group_ids": [list_id]}
    base = http.post("/api/segments", json=segment_body("in list", [[in_list]])).json()["data"]["id"]
    wait_computed(http, base)
    outside = {"type": "profile-group-membership", "is_member": False, "group_ids": [base]}
    derived = http.post("/api/segments", json=segment_body("not in it", [[outside]])).json()["data"]["id"]
    wait_computed(http, derived)
    assert member_ids(http, base) == set() and member_ids(http, derived) == {alice, bob}

    added = http.post(f"/api/lists/{list_id}/relationships/profiles", json={"data": [{"type": "profile",
                                                                                      "id": alice}]})
    assert added.status_code == 204, added.text
    assert member_ids(http, base) == {alice}
    assert member_ids(http, derived) == {bob}  # followed the other segment's change

    # A cycle is refused, naming the culprit.
    back = {"type": "profile-group-membership", "is_member": True, "group_ids": [derived]}
    cyclic = http.patch(f"/api/segments/{base}", json={"data": {"type": "segment", "id": base, "attributes": {
        "definition": {"condition_groups": [{"conditions": [back]}]}}}})
    err = error_of(cyclic)
    assert err["source"]["pointer"] == "/data/attributes/definition/condition_groups/0/conditions/0/group_ids/0"
    assert derived in err["detail"]
    # A segment another one reads cannot be deleted.
    assert http.delete(f"/api/segments/{base}").status_code == 409


# --------------------------------------------------------------------------- invalid definitions


@pytest.mark.parametrize(("condition", "pointer", "words"), [
    ({"type": "profile-metric", "metric_id": "NoSuch", "measurement": "count",
      "measurement_filter": {"type": "numeric", "operator": "equals", "value": 1},
      "timeframe_filter": {"type": "date", "operator": "alltime"}}, "/metric_id", "does not exist"),
    ({"type": "profile-property", "property": "created",
      "filter": {"type": "string", "operator": "equals", "value": "x"}}, "/filter", "cannot apply"),
    ({"type": "profile-property", "property": "favourite",
      "filter": {"type": "string", "operator": "equals", "value": "x"}}, "/property", "properties['favourite']"),
    ({"type": "profile-postal-code-distance", "country_code": "JP", "postal_code": "100-0001", "unit": "miles",
      "filter": {"type": "numeric", "operator": "less-than", "value": 5}}, "/country_code", "not available"),
    ({"type": "profile-postal-code-distance", "country_code": "US", "postal_code": "00000", "unit": "miles",
      "filter": {"type": "numeric", "operator": "less-than", "value": 5}}, "/postal_code", "not a known"),
    ({"type": "profile-sample", "percentage": 10}, "/type", "not a valid condition type"),
    ({"type": "profile-group-membership", "is_member": True, "group_ids": ["Nope12"]}, "/group_ids/0",
     "No list or segment"),
    ({"type": "profile-property", "property": "properties['age']",
      "filter": {"type": "numeric", "operator": "about", "value": 3}}, "/filter/operator", "not valid"),
    ({"type": "profile-marketing-consent", "consent": {"channel": "sms", "can_receive_marketing": True,
                                                       "consent_status": {"subscription": "any"}}},
     "/consent/consent_status/subscription", "not valid"),
])
def test_invalid_definitions_name_the_culprit(http, condition, pointer, words):
    response = http.post("/api/segments", json=segment_body("bad", [[email_subscribed(), condition]]))
    err = error_of(response)
    assert err["source"]["pointer"] == "/data/attributes/definition/condition_groups/0/conditions/1" + pointer
    assert words in err["detail"]


def test_other_invalid_requests(http):
    assert error_of(http.post("/api/segments", json={"data": {"type": "segment", "attributes": {"name": "x"}}})
                    )["source"]["pointer"] == "/data/attributes/definition"
    empty = http.post("/api/segments", json={"data": {"type": "segment", "attributes": {
        "name": "x", "definition": {"condition_groups": []}}}})
    assert error_of(empty)["source"]["pointer"] == "/data/attributes/definition/condition_groups"
    created = http.post("/api/segments", json=segment_body("ok", [[email_subscribed()]])).json()["data"]
    both = http.patch(f"/api/segments/{created['id']}", json={"data": {"type": "segment", "id": created["id"],
                                                                       "attributes": {"is_active": False,
                                                                                      "name": "y"}}})
    assert error_of(both)["source"]["pointer"] == "/data/attributes/is_active"
    off = http.patch(f"/api/segments/{created['id']}", json={"data": {"type": "segment", "id": created["id"],
                                                                      "attributes": {"is_active": False}}})
    assert off.status_code == 200 and off.json()["data"]["attributes"]["is_active"] is False
    assert_matches_spec("update_segment", 200, off.json())
    inactive = http.get("/api/segments", params={"filter": "equals(is_active,false)"}).json()["data"]
    assert [s["id"] for s in inactive] == [created["id"]]


def test_refresh_is_scheduled_for_time_relative_segments(http, server, account):
    from sqlalchemy import select

    from menura.store.tables import work_items

    pid = create_profile(http, email="recent@x.io")
    metric_id = record(server, account, pid, "Opened Email", when=SystemClock().now() - timedelta(hours=2))
    recent = {"type": "profile-metric", "metric_id": metric_id, "measurement": "count",
              "measurement_filter": {"type": "numeric", "operator": "greater-than", "value": 0},
              "timeframe_filter": {"type": "date", "operator": "in-the-last", "quantity": 3, "unit": "hour"}}
    segment_id = http.post("/api/segments", json=segment_body("recent", [[recent]])).json()["data"]["id"]
    wait_computed(http, segment_id)
    assert member_ids(http, segment_id) == {pid}
    with server.db.read() as conn:
        rows = conn.execute(select(work_items).where(work_items.c.kind == "segment.refresh",
                                                     work_items.c.account_id == account.id)).all()
    assert rows and all(row.payload["segment_id"] == segment_id for row in rows)
    assert min(row.run_at for row in rows) <= datetime.now(UTC) + timedelta(seconds=61)

    # The refresh at a later time lets the member age out.
    from menura.engine.segments import live
    from menura.store import segments as store

    with server.db.write() as conn:
        row = store.get_segment(conn, account.id, segment_id)
        changes = live.recompute(conn, row, SystemClock().now() + timedelta(hours=1, minutes=1))
    assert [(c.profile_id, c.entered) for c in changes] == [(pid, False)]
    assert member_ids(http, segment_id) == set()


def test_merging_profiles_moves_membership(http, server, account):
    keep = create_profile(http, email="keep@x.io")
    gone = create_profile(http, email="gone@x.io")
    metric_id = record(server, account, keep, "Placed Order", when=SystemClock().now() - timedelta(days=2))
    record(server, account, gone, "Placed Order", when=SystemClock().now() - timedelta(days=1))
    once = dict(placed_order(metric_id, at_least=1), timeframe_filter={"type": "date", "operator": "alltime"})
    twice = dict(placed_order(metric_id, at_least=2), timeframe_filter={"type": "date", "operator": "alltime"})
    one_id = http.post("/api/segments", json=segment_body("once", [[once]])).json()["data"]["id"]
    two_id = http.post("/api/segments", json=segment_body("twice", [[twice]])).json()["data"]["id"]
    wait_computed(http, one_id)
    wait_computed(http, two_id)
    assert member_ids(http, one_id) == {keep, gone} and member_ids(http, two_id) == set()
    merged = http.post("/api/profile-merge", json={"data": {"type": "profile-merge", "id": keep, "relationships": {
        "profiles": {"data": [{"type": "profile", "id": gone}]}}}})
    assert merged.status_code == 201, merged.text
    assert member_ids(http, one_id) == {keep}
    assert member_ids(http, two_id) == {keep}  # the merged profile's event counts now


def test_entering_and_leaving_are_signalled_in_the_changing_transaction(http, server, account):
    from menura.engine.segments import signals

    pid = create_profile(http, email="signal@x.io")
    seed = create_profile(http, email="seed@x.io")
    metric_id = record(server, account, seed, "Started Checkout")
    condition = dict(placed_order(metric_id, at_least=1), timeframe_filter={"type": "date", "operator": "alltime"})
    segment_id = http.post("/api/segments", json=segment_body("checkout", [[condition]])).json()["data"]["id"]
    wait_computed(http, segment_id)
    seen: list[signals.MembershipChange] = []
    subscriber = signals.subscribe(lambda conn, changes: seen.extend(changes))
    try:
        # A transaction that fails takes the membership and its signal's effects with it.
        with pytest.raises(RuntimeError), server.db.write() as conn:
            record_event(conn, account_id=account.id, profile_id=pid, metric_name="Started Checkout",
                         properties={}, time=SystemClock().now(), now=SystemClock().now())
            raise RuntimeError("rolled back")
        assert member_ids(http, segment_id) == {seed}
        record(server, account, pid, "Started Checkout")
        assert member_ids(http, segment_id) == {seed, pid}
    finally:
        signals.unsubscribe(subscriber)
    mine = [c for c in seen if c.segment_id == segment_id]
    assert [(c.profile_id, c.entered) for c in mine] == [(pid, True), (pid, True)]


def test_deleted_profiles_leave_no_membership_behind(http, server, account):
    from sqlalchemy import select

    from menura.domain import profiles as profile_rules
    from menura.store.segment_tables import segment_members, segment_membership_changes

    pid = create_profile(http, email="forget-me@x.io")
    segment_id = http.post("/api/segments", json=segment_body("all", [[email_subscribed()]])).json()["data"]["id"]
    wait_computed(http, segment_id)
    assert pid in member_ids(http, segment_id)
    with server.db.write() as conn:
        profile_rules.delete_profile_everywhere(conn, account.id, pid)
    with server.db.read() as conn:
        for table in (segment_members, segment_membership_changes):
            assert conn.execute(select(table).where(table.c.profile_id == pid)).first() is None
    assert pid not in member_ids(http, segment_id)


def test_consent_changes_are_live(http, sdk, server, account):
    pid = create_profile(http, email="push@x.io", phone_number="+15005550006")
    push = {"type": "profile-marketing-consent", "consent": {"channel": "push", "can_receive_marketing": True,
                                                             "consent_status": {"subscription": "any"}}}
    unsubscribed = {"type": "profile-marketing-consent", "consent": {
        "channel": "email", "can_receive_marketing": False, "consent_status": {"subscription": "unsubscribed"}}}
    push_id = http.post("/api/segments", json=segment_body("push", [[push]])).json()["data"]["id"]
    gone_id = http.post("/api/segments", json=segment_body("unsubscribed", [[unsubscribed]])).json()["data"]["id"]
    wait_computed(http, push_id)
    wait_computed(http, gone_id)
    assert pid not in member_ids(http, push_id) | member_ids(http, gone_id)
    sdk.Profiles.create_push_token({"data": {"type": "push-token", "attributes": {
        "token": "tok-live", "platform": "ios", "vendor": "apns",
        "profile": {"data": {"type": "profile", "attributes": {"email": "push@x.io"}}}}}})
    assert pid in member_ids(http, push_id)
    from menura.domain import consent

    with server.db.write() as conn:
        consent.set_email_marketing(conn, account_id=account.id, profile_id=pid, consent=consent.UNSUBSCRIBED,
                                    now=SystemClock().now())
    assert pid in member_ids(http, gone_id)
