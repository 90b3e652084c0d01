"""A profile's relations end to end: push tokens (server side), lists, segments, conversations, and
the consent (`subscriptions`) view after suppressions. Bodies validated against Klaviyo's spec."""

from __future__ import annotations

import httpx
import pytest
from openapi_client.exceptions import ApiException

from menura.domain import consent
from tests.spec import assert_matches_spec


def create_profile(http: httpx.Client, **attributes) -> str:
    response = http.post("/api/profiles", json={"data": {"type": "profile", "attributes": attributes}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def token_body(token: str, profile: dict, **extra) -> dict:
    attributes = {"token": token, "platform": "ios", "vendor": "apns", "profile": {"data": profile}, **extra}
    return {"data": {"type": "push-token", "attributes": attributes}}


def test_push_tokens_lifecycle(sdk, http):
    sdk.Profiles.create_push_token(token_body("tok-1", {"type": "profile", "attributes": {"email": "push@x.io"}},
                                              device_metadata={"device_id": "D1", "klaviyo_sdk": "swift",
                                                               "os_name": "ios"}))
    listed = http.get("/api/push-tokens", params={"include": "profile"})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert_matches_spec("get_push_tokens", 200, body)
    [token] = body["data"]
    assert token["attributes"]["token"] == "tok-1" and token["attributes"]["enablement_status"] == "AUTHORIZED"
    assert token["attributes"]["metadata"]["device_id"] == "D1"
    [profile] = body["included"]
    assert profile["attributes"]["email"] == "push@x.io"
    assert token["relationships"]["profile"]["data"] == {"type": "profile", "id": profile["id"]}

    got = http.get(f"/api/push-tokens/{token['id']}", params={"include": "profile"})
    assert_matches_spec("get_push_token", 200, got.json())
    assert sdk.Profiles.get_push_token(token["id"]).data.attributes.token == "tok-1"
    assert sdk.Profiles.get_profile_for_push_token(token["id"]).data.id == profile["id"]
    assert_matches_spec("get_profile_for_push_token", 200,
                        http.get(f"/api/push-tokens/{token['id']}/profile").json())
    rel = http.get(f"/api/push-tokens/{token['id']}/relationships/profile").json()
    assert_matches_spec("get_profile_id_for_push_token", 200, rel)
    assert rel["data"] == {"type": "profile", "id": profile["id"]}
    assert sdk.Profiles.get_profile_id_for_push_token(token["id"]).data.id == profile["id"]
    assert [t.id for t in sdk.Profiles.get_push_tokens(include=["profile"]).data] == [token["id"]]
    assert [t.id for t in sdk.Profiles.get_push_tokens_for_profile(profile["id"]).data] == [token["id"]]
    ids = http.get(f"/api/profiles/{profile['id']}/relationships/push-tokens").json()
    assert_matches_spec("get_push_token_ids_for_profile", 200, ids)
    assert ids["data"] == [{"type": "push-token", "id": token["id"]}]
    assert sdk.Profiles.get_push_token_ids_for_profile(profile["id"]).data[0].id == token["id"]
    assert_matches_spec("get_push_tokens_for_profile", 200,
                        http.get(f"/api/profiles/{profile['id']}/push-tokens").json())

    # Push consent follows the tokens.
    view = http.get(f"/api/profiles/{profile['id']}", params={"additional-fields[profile]": "subscriptions",
                                                              "include": "push-tokens"}).json()
    assert_matches_spec("get_profile", 200, view)
    assert view["data"]["attributes"]["subscriptions"]["mobile_push"]["marketing"]["consent"] == "SUBSCRIBED"
    assert [t["id"] for t in view["included"]] == [token["id"]]

    # Re-registering the token updates it in place; filters narrow the listing.
    sdk.Profiles.create_push_token(token_body("tok-1", {"type": "profile", "id": profile["id"], "attributes": {}},
                                              enablement_status="DENIED"))
    denied = http.get("/api/push-tokens", params={"filter": "equals(enablement_status,'DENIED')"}).json()["data"]
    assert [t["id"] for t in denied] == [token["id"]]
    assert http.get("/api/push-tokens", params={"filter": "equals(platform,'android')"}).json()["data"] == []
    by_profile = http.get("/api/push-tokens", params={"filter": f"equals(profile.id,'{profile['id']}')"})
    assert len(by_profile.json()["data"]) == 1
    assert http.get("/api/push-tokens", params={"filter": "equals(platform,'windows')"}).status_code == 400

    sdk.Profiles.delete_push_token(token["id"])
    with pytest.raises(ApiException) as caught:
        sdk.Profiles.get_push_token(token["id"])
    assert caught.value.status == 404
    assert http.delete(f"/api/push-tokens/{token['id']}").status_code == 404


@pytest.mark.parametrize(("attributes", "pointer"), [
    ({"token": "t", "platform": "windows", "vendor": "apns"}, "/data/attributes/platform"),
    ({"token": "t", "platform": "android", "vendor": "apns"}, "/data/attributes/vendor"),
    ({"platform": "ios", "vendor": "apns"}, "/data/attributes/token"),
    ({"token": "t", "platform": "ios", "vendor": "apns", "enablement_status": "MAYBE"},
     "/data/attributes/enablement_status"),
])
def test_push_token_bad_input(http, attributes, pointer):
    body = {"data": {"type": "push-token", "attributes": {
        **attributes, "profile": {"data": {"type": "profile", "attributes": {"email": "bad@x.io"}}}}}}
    response = http.post("/api/push-tokens", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"]["pointer"] == pointer
    # Nothing half-written: the profile was not created either.
    assert http.get("/api/profiles", params={"filter": "equals(email,'bad@x.io')"}).json()["data"] == []


def test_push_token_profile_email_is_validated(http):
    response = http.post("/api/push-tokens", json=token_body("t2", {"type": "profile",
                                                                    "attributes": {"email": "nope"}}))
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"]["pointer"] == "/data/attributes/profile/data/attributes/email"


def test_lists_of_a_profile(sdk, http):
    pid = create_profile(http, email="member@x.io")
    list_ids = []
    for name in ("Newsletter", "VIP"):
        response = http.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": name}}})
        assert response.status_code == 201, response.text
        list_ids.append(response.json()["data"]["id"])
        added = http.post(f"/api/lists/{list_ids[-1]}/relationships/profiles",
                          json={"data": [{"type": "profile", "id": pid}]})
        assert added.status_code == 204, added.text
    lists = http.get(f"/api/profiles/{pid}/lists")
    assert_matches_spec("get_lists_for_profile", 200, lists.json())
    assert sorted(item["id"] for item in lists.json()["data"]) == sorted(list_ids)
    assert sorted(item.id for item in sdk.Profiles.get_lists_for_profile(pid).data) == sorted(list_ids)
    ids = http.get(f"/api/profiles/{pid}/relationships/lists").json()
    assert_matches_spec("get_list_ids_for_profile", 200, ids)
    assert sorted(item["id"] for item in ids["data"]) == sorted(list_ids)
    assert len(sdk.Profiles.get_list_ids_for_profile(pid).data) == 2
    included = http.get(f"/api/profiles/{pid}", params={"include": "lists", "fields[list]": "name"}).json()
    assert_matches_spec("get_profile", 200, included)
    assert sorted(item["attributes"]["name"] for item in included["included"]) == ["Newsletter", "VIP"]
    assert len(included["data"]["relationships"]["lists"]["data"]) == 2


def test_segments_and_conversations_are_correctly_shaped(sdk, http):
    pid = create_profile(http, email="quiet@x.io")
    for path, operation in [("segments", "get_segments_for_profile"),
                            ("relationships/segments", "get_segment_ids_for_profile"),
                            ("conversations", "get_conversations_for_profile"),
                            ("relationships/conversations", "get_conversation_ids_for_profile"),
                            ("conversation", "get_conversation_for_profile"),
                            ("relationships/conversation", "get_conversation_id_for_profile")]:
        response = http.get(f"/api/profiles/{pid}/{path}")
        assert response.status_code == 200, (path, response.text)
        assert_matches_spec(operation, 200, response.json())
        assert http.get(f"/api/profiles/01HZZZZZZZZZZZZZZZZZZZZZZZ/{path}").status_code == 404
    assert sdk.Profiles.get_segments_for_profile(pid).data == []
    assert sdk.Profiles.get_segment_ids_for_profile(pid).data == []
    assert sdk.Profiles.get_conversations_for_profile(pid).data == []
    assert sdk.Profiles.get_conversation_ids_for_profile(pid).data == []
    assert sdk.Profiles.get_conversation_for_profile(pid).data is None
    assert sdk.Profiles.get_conversation_id_for_profile(pid).data is None
    body = http.get("/api/profiles", params={"include": "conversations,push-tokens"}).json()
    assert_matches_spec("get_profiles", 200, body)
    assert body["data"][0]["relationships"]["conversations"]["data"] == []


def test_subscriptions_view_reflects_consent_and_suppressions(server, http, account):
    pid = create_profile(http, email="consent@x.io", phone_number="+15005550006")
    now = server.services.clock.now()
    with server.db.write() as conn:
        consent.set_email_marketing(conn, account_id=account.id, profile_id=pid, consent="SUBSCRIBED", now=now,
                                    method="API", method_detail="test", double_optin=False)
        consent.set_sms_marketing(conn, account_id=account.id, profile_id=pid, consent="SUBSCRIBED", now=now)
        consent.add_list_suppression(conn, account_id=account.id, profile_id=pid, list_id="Xy12Ab",
                                     reason="UNSUBSCRIBE", now=now)
    params = {"additional-fields[profile]": "subscriptions"}
    body = http.get(f"/api/profiles/{pid}", params=params).json()
    assert_matches_spec("get_profile", 200, body)
    subs = body["data"]["attributes"]["subscriptions"]
    assert subs["email"]["marketing"]["can_receive_email_marketing"] is True
    assert subs["email"]["marketing"]["list_suppressions"][0]["list_id"] == "Xy12Ab"
    assert subs["sms"]["marketing"]["can_receive_sms_marketing"] is True
    with server.db.write() as conn:
        consent.suppress_email(conn, account_id=account.id, profile_id=pid, reason="SPAM_COMPLAINT", now=now)
    body = http.get("/api/profiles", params={
        **params, "filter": "equals(subscriptions.email.marketing.suppression.reason,'SPAM_COMPLAINT')"}).json()
    assert_matches_spec("get_profiles", 200, body)
    assert [p["id"] for p in body["data"]] == [pid]
    marketing = body["data"][0]["attributes"]["subscriptions"]["email"]["marketing"]
    assert marketing["can_receive_email_marketing"] is False
    assert marketing["suppression"][0]["reason"] == "SPAM_COMPLAINT"
    listed = http.get("/api/profiles", params={
        "filter": "equals(subscriptions.email.marketing.list_suppressions.list_id,'Xy12Ab')",
        "sort": "-subscriptions.email.marketing.list_suppressions.timestamp"})
    assert [p["id"] for p in listed.json()["data"]] == [pid]
    sorted_by_suppression = http.get("/api/profiles", params={
        "sort": "subscriptions.email.marketing.suppression.timestamp", "page[size]": "1"})
    assert sorted_by_suppression.status_code == 200
