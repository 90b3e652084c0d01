"""Profiles end to end through the official SDK: create, get, update, import (upsert), merge, listing
with filters / sorts / pages / includes / sparse fieldsets / additional fields, and errors. Every body
is validated against Klaviyo's spec."""

from __future__ import annotations

import httpx
import pytest
from openapi_client.exceptions import ApiException

from tests.e2e.paging import walk
from tests.spec import assert_matches_spec


def profile_body(**attributes) -> dict:
    return {"data": {"type": "profile", "attributes": attributes}}


def create(http: httpx.Client, **attributes) -> dict:
    response = http.post("/api/profiles", json=profile_body(**attributes))
    assert response.status_code == 201, response.text
    assert_matches_spec("create_profile", 201, response.json())
    return response.json()["data"]


def error_of(response: httpx.Response, status: int, operation: str = "get_profiles") -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert_matches_spec(operation, status, body)
    return body["errors"][0]


# --------------------------------------------------------------------------- SDK round trip


def test_create_get_update_through_the_sdk(sdk, http):
    created = sdk.Profiles.create_profile(profile_body(
        email="Sarah.Mason@Klaviyo-Demo.com", phone_number="+15005550006", first_name="Sarah",
        location={"city": "Boston", "latitude": 42.36}, properties={"plan": "gold", "nested": {"a": [1, 2]}}))
    profile = created.data
    assert profile.attributes.email == "sarah.mason@klaviyo-demo.com"
    assert profile.attributes.location.city == "Boston"
    pid = profile.id
    assert len(pid) == 26

    got = sdk.Profiles.get_profile(pid, additional_fields_profile=["subscriptions", "predictive_analytics"])
    assert got.data.attributes.subscriptions.email.marketing.consent == "NEVER_SUBSCRIBED"
    assert got.data.attributes.subscriptions.email.marketing.can_receive_email_marketing is False
    raw = http.get(f"/api/profiles/{pid}", params={"additional-fields[profile]": "subscriptions,predictive_analytics"})
    assert_matches_spec("get_profile", 200, raw.json())
    attrs = raw.json()["data"]["attributes"]
    assert attrs["properties"] == {"plan": "gold", "nested": {"a": [1, 2]}}
    assert attrs["predictive_analytics"]["historic_number_of_orders"] == 0
    assert attrs["predictive_analytics"]["predicted_clv"] is None

    updated = sdk.Profiles.update_profile(pid, {"data": {
        "type": "profile", "id": pid,
        "attributes": {"first_name": None, "last_name": "Mason", "location": {"zip": "02110"},
                       "properties": {"tier": 2}},
        "meta": {"patch_properties": {"append": {"skus": "92538"}, "unset": "plan"}}}})
    attributes = updated.data.attributes
    assert attributes.first_name is None and attributes.last_name == "Mason"
    assert attributes.location.city == "Boston" and attributes.location.zip == "02110"
    assert attributes.properties == {"nested": {"a": [1, 2]}, "tier": 2, "skus": ["92538"]}
    response = http.get(f"/api/profiles/{pid}")
    assert response.json()["data"]["attributes"]["updated"] >= response.json()["data"]["attributes"]["created"]


def test_create_or_update_profile_upserts(sdk, http):
    first = http.post("/api/profile-import", json=profile_body(email="up@example.com", first_name="A"))
    assert first.status_code == 201, first.text
    assert_matches_spec("create_or_update_profile", 201, first.json())
    pid = first.json()["data"]["id"]
    second = sdk.Profiles.create_or_update_profile(profile_body(email="UP@example.com", last_name="B"))
    assert second.data.id == pid
    assert (second.data.attributes.first_name, second.data.attributes.last_name) == ("A", "B")
    again = http.post("/api/profile-import", json=profile_body(email="up@example.com"))
    assert again.status_code == 200
    assert_matches_spec("create_or_update_profile", 200, again.json())
    # By id: identifiers may change.
    by_id = http.post("/api/profile-import", json={"data": {"type": "profile", "id": pid,
                                                            "attributes": {"email": "new@example.com"}}})
    assert by_id.status_code == 200 and by_id.json()["data"]["attributes"]["email"] == "new@example.com"


def test_duplicate_identifier_is_409_with_the_existing_id(http):
    existing = create(http, email="dup@example.com")
    response = http.post("/api/profiles", json=profile_body(email="DUP@example.com", first_name="x"))
    error = error_of(response, 409, "create_profile")
    assert error["code"] == "duplicate_profile" and error["title"] == "Conflict."
    assert error["detail"] == "A profile already exists with one of these identifiers."
    assert error["source"] == {"pointer": "/data/attributes"}
    assert error["meta"]["duplicate_profile_id"] == existing["id"]
    other = create(http, external_id="ext-2")
    conflict = http.patch(f"/api/profiles/{other['id']}", json={"data": {
        "type": "profile", "id": other["id"], "attributes": {"email": "dup@example.com"}}})
    assert error_of(conflict, 409, "update_profile")["meta"]["duplicate_profile_id"] == existing["id"]
    upsert = http.post("/api/profile-import", json=profile_body(email="dup@example.com", external_id="ext-2"))
    assert error_of(upsert, 409, "create_or_update_profile")["meta"]["duplicate_profile_id"] == other["id"]


@pytest.mark.parametrize(("attributes", "pointer"), [
    ({"email": "not-an-email"}, "/data/attributes/email"),
    ({"phone_number": "555-1234"}, "/data/attributes/phone_number"),
    ({"first_name": "no identifier"}, "/data/attributes"),
    ({"email": "a@b.co", "location": {"latitude": "north"}}, "/data/attributes/location/latitude"),
    ({"email": "a@b.co", "unknown": 1}, "/data/attributes/unknown"),
    ({"email": 12}, "/data/attributes/email"),
])
def test_bad_input_is_400_naming_the_culprit(http, attributes, pointer):
    response = http.post("/api/profiles", json=profile_body(**attributes))
    assert error_of(response, 400, "create_profile")["source"]["pointer"] == pointer


def test_wrong_type_and_mismatched_id(http):
    assert http.post("/api/profiles", json={"data": {"type": "list", "attributes": {"email": "t@x.io"}}}
                     ).status_code == 409
    pid = create(http, email="mismatch@x.io")["id"]
    response = http.patch(f"/api/profiles/{pid}", json={"data": {"type": "profile", "id": "other",
                                                                 "attributes": {}}})
    assert response.status_code == 409
    assert http.post("/api/profiles", json={"data": {"type": "profile"}}).status_code == 400


def test_other_accounts_profiles_are_404(http, server, other_account):
    pid = create(http, email="mine@x.io")["id"]
    headers = {**http.headers, "authorization": f"Klaviyo-API-Key {other_account.key}"}
    with httpx.Client(base_url=server.url, headers=headers) as other:
        assert other.get(f"/api/profiles/{pid}").status_code == 404
        assert other.patch(f"/api/profiles/{pid}", json={"data": {"type": "profile", "id": pid,
                                                                  "attributes": {"first_name": "x"}}}
                           ).status_code == 404
        assert other.get(f"/api/profiles/{pid}/lists").status_code == 404
        # Same email in the other account is a different profile.
        assert other.post("/api/profiles", json=profile_body(email="mine@x.io")).status_code == 201


def test_missing_profile_is_404(sdk):
    with pytest.raises(ApiException) as caught:
        sdk.Profiles.get_profile("01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert caught.value.status == 404


# --------------------------------------------------------------------------- listing


def test_filters_sorts_and_pages(sdk, http):
    made = [create(http, email=f"p{i}@list.io", external_id=f"E{i}") for i in range(5)]
    ids = [p["id"] for p in made]
    everything = walk(http, "/api/profiles", {"page[size]": "2"}, operation="get_profiles")
    assert [p["id"] for p in everything] == sorted(ids)
    by_email = walk(http, "/api/profiles", {"sort": "-email", "page[size]": "2"}, operation="get_profiles")
    assert [p["attributes"]["email"] for p in by_email] == [f"p{i}@list.io" for i in reversed(range(5))]
    by_created = walk(http, "/api/profiles", {"sort": "created", "page[size]": "3"}, operation="get_profiles")
    assert [p["id"] for p in by_created] == ids

    found = sdk.Profiles.get_profiles(filter="equals(email,'P3@list.io')")
    assert [p.id for p in found.data] == [ids[3]]
    found = walk(http, "/api/profiles", {"filter": "any(external_id,['E1','E4'])"}, operation="get_profiles")
    assert sorted(p["id"] for p in found) == sorted([ids[1], ids[4]])
    first_created = made[0]["attributes"]["created"]
    later = walk(http, "/api/profiles", {"filter": f"greater-than(created,{first_created})"}, operation="get_profiles")
    assert ids[0] not in [p["id"] for p in later]

    # Prev link walks back.
    page = http.get("/api/profiles", params={"page[size]": "2"}).json()
    second = http.get(page["links"]["next"]).json()
    back = http.get(second["links"]["prev"]).json()
    assert [p["id"] for p in back["data"]] == [p["id"] for p in page["data"]]


@pytest.mark.parametrize(("params", "parameter"), [
    ({"filter": "equals(first_name,'x')"}, "filter"),
    ({"filter": "contains(email,'x')"}, "filter"),
    ({"filter": "greater-or-equal(created,2024-01-01T00:00:00Z)"}, "filter"),
    ({"sort": "first_name"}, "sort"),
    ({"page[size]": "101"}, "page[size]"),
    ({"include": "lists"}, "include"),
    ({"fields[profile]": "favourite_color"}, "fields[profile]"),
    ({"additional-fields[profile]": "scores"}, "additional-fields[profile]"),
])
def test_listing_rejects_what_the_operation_does_not_allow(http, params, parameter):
    error = error_of(http.get("/api/profiles", params=params), 400)
    assert error["source"]["parameter"] == parameter


def test_sparse_fields_and_additional_fields(http):
    pid = create(http, email="sparse@x.io", first_name="S", location={"city": "Oslo"})["id"]
    body = http.get("/api/profiles", params={
        "filter": f"equals(id,'{pid}')", "fields[profile]": "email,location.city,subscriptions.email.marketing.consent",
        "additional-fields[profile]": "subscriptions"}).json()
    # (A sparse fieldset drops required nested keys, so this body is not checked against the schema.)
    assert body["data"][0]["attributes"] == {"email": "sparse@x.io", "location": {"city": "Oslo"},
                                             "subscriptions": {"email": {"marketing": {
                                                 "consent": "NEVER_SUBSCRIBED"}}}}


def test_kx_identifies_and_filters(server, http, account):
    from menura.domain import identity

    pid = create(http, email="kx@x.io")["id"]
    token = identity.kx_token(server.services.secret, account.id, pid)
    found = http.get("/api/profiles", params={"filter": f"equals(_kx,'{token}')"}).json()["data"]
    assert [p["id"] for p in found] == [pid]
    assert http.get("/api/profiles", params={"filter": "equals(_kx,'forged')"}).json()["data"] == []
    upsert = http.post("/api/profile-import", json=profile_body(_kx=token, first_name="Kay"))
    assert upsert.status_code == 200 and upsert.json()["data"]["id"] == pid


# --------------------------------------------------------------------------- merge


def test_merge_moves_data_and_deletes_the_source(sdk, http):
    destination = create(http, email="dest@x.io", properties={"a": 1})
    source = create(http, email="src@x.io", phone_number="+15005550006", properties={"a": 2, "b": 3})
    response = http.post("/api/profile-merge", json={"data": {
        "type": "profile-merge", "id": destination["id"],
        "relationships": {"profiles": {"data": [{"type": "profile", "id": source["id"]}]}}}})
    assert response.status_code == 201, response.text
    assert_matches_spec("merge_profiles", 201, response.json())
    assert response.json()["data"]["id"] == destination["id"]
    with pytest.raises(ApiException):
        sdk.Profiles.get_profile(source["id"])
    merged = sdk.Profiles.get_profile(destination["id"]).data.attributes
    assert merged.phone_number == "+15005550006" and merged.properties == {"a": 1, "b": 3}
    # The survivor keeps one email address (its own); the source's is free again.
    assert merged.email == "dest@x.io"
    again = http.post("/api/profile-import", json=profile_body(email="src@x.io"))
    assert again.status_code == 201


def test_merge_through_the_sdk_and_its_errors(sdk, http):
    destination = create(http, email="d2@x.io")
    source = create(http, email="s2@x.io")
    sdk.Profiles.merge_profiles({"data": {"type": "profile-merge", "id": destination["id"], "relationships": {
        "profiles": {"data": [{"type": "profile", "id": source["id"]}]}}}})
    missing = http.post("/api/profile-merge", json={"data": {
        "type": "profile-merge", "id": destination["id"],
        "relationships": {"profiles": {"data": [{"type": "profile", "id": source["id"]}]}}}})
    assert missing.status_code == 404
    itself = http.post("/api/profile-merge", json={"data": {
        "type": "profile-merge", "id": destination["id"],
        "relationships": {"profiles": {"data": [{"type": "profile", "id": destination["id"]}]}}}})
    assert itself.status_code == 400


def test_predictive_analytics_historic_figures_come_from_orders(server, http, account):
    from datetime import timedelta

    from menura.domain.events import record_event

    pid = create(http, email="buyer@x.io")["id"]
    now = server.services.clock.now()
    with server.db.write() as conn:
        for days, value in ((20, 10.0), (10, 30.0)):
            record_event(conn, account_id=account.id, profile_id=pid, metric_name="Placed Order",
                         properties={"$value": value}, time=now - timedelta(days=days), now=now, value=value)
    body = http.get("/api/profiles", params={"filter": f"equals(id,'{pid}')",
                                             "additional-fields[profile]": "predictive_analytics"}).json()
    assert_matches_spec("get_profiles", 200, body)
    figures = body["data"][0]["attributes"]["predictive_analytics"]
    assert figures["historic_number_of_orders"] == 2
    assert figures["historic_clv"] == 40.0 and figures["average_order_value"] == 20.0
    assert figures["average_days_between_orders"] == 10.0
    assert body["data"][0]["attributes"]["last_event_date"] is not None
