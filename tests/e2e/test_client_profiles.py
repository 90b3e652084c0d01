"""Client-side profile endpoints (public key as company_id): create/update a profile, register and
unregister push tokens. Identifiers of an existing profile never change from the client side."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import REVISION
from tests.spec import assert_matches_spec


@pytest.fixture
def client(server, account) -> Iterator[httpx.Client]:
    headers = {"revision": REVISION, "Content-Type": "application/vnd.api+json"}
    with httpx.Client(base_url=server.url, headers=headers, params={"company_id": account.id}, timeout=30) as c:
        yield c


def profile_doc(attributes: dict, **extra) -> dict:
    return {"data": {"type": "profile", "attributes": attributes, **extra}}


def only_profile(http: httpx.Client, filter_text: str) -> dict:
    body = http.get("/api/profiles", params={"filter": filter_text}).json()
    assert len(body["data"]) == 1, body
    return body["data"][0]


def test_client_profile_creates_and_updates_without_touching_identifiers(client, http):
    response = client.post("/client/profiles", json=profile_doc(
        {"email": "browser@x.io", "first_name": "Web", "properties": {"source": "popup"}}))
    assert response.status_code == 202 and response.content == b""
    profile = only_profile(http, "equals(email,'browser@x.io')")
    assert profile["attributes"]["properties"] == {"source": "popup"}

    # Found by email; the phone and external id sent alongside are not added (identifier update).
    client.post("/client/profiles", json=profile_doc(
        {"email": "browser@x.io", "external_id": "new-ext", "last_name": "Visitor"},
        meta={"patch_properties": {"append": {"pages": "/home"}}}))
    profile = only_profile(http, "equals(email,'browser@x.io')")
    assert profile["attributes"]["last_name"] == "Visitor"
    assert profile["attributes"]["external_id"] is None
    assert profile["attributes"]["properties"]["pages"] == ["/home"]

    # An anonymous visitor becomes a profile of its own.
    assert client.post("/client/profiles", json=profile_doc({"anonymous_id": "anon-1"})).status_code == 202


def test_client_profile_errors(client, server):
    bad = client.post("/client/profiles", json=profile_doc({"email": "nope"}))
    assert bad.status_code == 400
    assert_matches_spec("create_client_profile", 400, bad.json())
    assert bad.json()["errors"][0]["source"]["pointer"] == "/data/attributes/email"
    assert client.post("/client/profiles", json=profile_doc({"first_name": "x"})).status_code == 400
    no_key = httpx.post(f"{server.url}/client/profiles", json=profile_doc({"email": "a@x.io"}),
                        headers={"revision": REVISION})
    assert no_key.status_code in (400, 401)
    wrong = httpx.post(f"{server.url}/client/profiles", params={"company_id": "NOPE00"},
                       json=profile_doc({"email": "a@x.io"}), headers={"revision": REVISION})
    assert wrong.status_code in (400, 401)


def test_client_push_token_register_and_unregister(client, http):
    body = {"data": {"type": "push-token", "attributes": {
        "token": "device-abc", "platform": "android", "vendor": "fcm", "enablement_status": "AUTHORIZED",
        "background": "AVAILABLE", "device_metadata": {"device_id": "X", "klaviyo_sdk": "android"},
        "profile": {"data": {"type": "profile", "attributes": {"external_id": "app-user-1"}}}}}}
    response = client.post("/client/push-tokens", json=body)
    assert response.status_code == 202, response.text
    tokens = http.get("/api/push-tokens", params={"include": "profile"}).json()
    assert [t["attributes"]["token"] for t in tokens["data"]] == ["device-abc"]
    assert tokens["included"][0]["attributes"]["external_id"] == "app-user-1"

    # Unregistering for another profile changes nothing; for the owner it removes the token.
    other = {"data": {"type": "push-token-unregister", "attributes": {
        "token": "device-abc", "platform": "android", "vendor": "fcm",
        "profile": {"data": {"type": "profile", "attributes": {"external_id": "someone-else"}}}}}}
    assert client.post("/client/push-token-unregister", json=other).status_code == 202
    assert len(http.get("/api/push-tokens").json()["data"]) == 1
    mine = {"data": {"type": "push-token-unregister", "attributes": {
        "token": "device-abc", "platform": "android",
        "profile": {"data": {"type": "profile", "attributes": {"external_id": "app-user-1"}}}}}}
    assert client.post("/client/push-token-unregister", json=mine).status_code == 202
    assert http.get("/api/push-tokens").json()["data"] == []


def test_client_cors_preflight(client):
    response = client.options("/client/profiles", headers={"Origin": "https://shop.example",
                                                            "Access-Control-Request-Method": "POST"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://shop.example")
