"""`POST /client/subscriptions` as a browser calls it: public key in `company_id`, CORS, 202, then
the subscription applied by the worker (both databases). The official server-side SDK has no
client endpoints, so these requests are made directly."""

from __future__ import annotations

import httpx

from tests.conftest import REVISION
from tests.e2e.test_lists_subscriptions import email_marketing, member_ids, metric_names, wait_until
from tests.e2e.test_profile_jobs import new_list, profile_by_email
from tests.spec import assert_matches_spec


def client_body(list_id: str, attributes: dict, **extra) -> dict:
    return {"data": {"type": "subscription",
                     "attributes": {"profile": {"data": {"type": "profile", "attributes": attributes}}, **extra},
                     "relationships": {"list": {"data": {"type": "list", "id": list_id}}}}}


def post(server, account, body, origin: str | None = None) -> httpx.Response:
    headers = {"revision": REVISION, "Content-Type": "application/json"}
    if origin:
        headers["Origin"] = origin
    return httpx.post(f"{server.url}/client/subscriptions", params={"company_id": account.id}, json=body,
                      headers=headers)


def test_client_subscription_defaults_to_marketing_on_given_identifiers(server, account, http):
    list_id = new_list(http, "Footer", "single_opt_in")
    response = post(server, account, client_body(list_id, {
        "email": "Web@Example.com", "phone_number": "+15005550006", "first_name": "Wen",
        "properties": {"source": "footer"}}, custom_source="Homepage footer"), origin="https://shop.example")
    assert response.status_code == 202, response.text
    assert response.content == b""
    assert_matches_spec("create_client_subscription", 202, None)
    assert response.headers["access-control-allow-origin"] in ("*", "https://shop.example")

    marketing = wait_until(lambda: (m := email_marketing(http, "web@example.com")) and m["consent"] == "SUBSCRIBED"
                           and m)
    assert marketing["custom_method_detail"] == "Homepage footer"
    profile = profile_by_email(http, "web@example.com")
    assert profile["attributes"]["first_name"] == "Wen"
    assert profile["attributes"]["properties"] == {"source": "footer"}
    assert profile["attributes"]["subscriptions"]["sms"]["marketing"]["consent"] == "SUBSCRIBED"
    wait_until(lambda: member_ids(http, list_id) == [profile["id"]])
    assert metric_names(http, profile["id"]) == ["Consented to Receive SMS", "Subscribed to List"]


def test_client_subscription_with_channels_and_double_opt_in(server, account, http):
    list_id = new_list(http, "Pop-up", "double_opt_in")
    response = post(server, account, client_body(list_id, {
        "email": "pop@example.com", "phone_number": "+15005550007",
        "subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}))
    assert response.status_code == 202, response.text
    profile = wait_until(lambda: profile_by_email(http, "pop@example.com"))
    # Only the channel named is subscribed, and on a double opt-in list it waits for confirmation.
    assert email_marketing(http, "pop@example.com")["consent"] == "NEVER_SUBSCRIBED"
    assert profile["attributes"]["phone_number"] == "+15005550007"
    assert profile["attributes"]["subscriptions"]["sms"]["marketing"]["consent"] == "NEVER_SUBSCRIBED"
    assert member_ids(http, list_id) == []


def test_client_subscription_bad_input(server, account, http):
    list_id = new_list(http, "Strict client")
    cases = [
        (client_body(list_id, {"email": "nope"}), 400, "/data/attributes/profile/data/attributes/email"),
        (client_body(list_id, {"first_name": "No identifier"}), 400, "/data/attributes/profile/data/attributes"),
        (client_body("nope12", {"email": "a@example.com"}), 404, "/data/relationships/list/data/id"),
        (client_body(list_id, {"email": "a@example.com", "subscriptions": {
            "email": {"marketing": {"consent": "SUBSCRIBED", "consented_at": "2020-01-01T00:00:00Z"}}}}), 400,
         "/data/attributes/profile/data/attributes/subscriptions/email/marketing/consented_at"),
    ]
    for body, status, pointer in cases:
        response = post(server, account, body)
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["source"] == {"pointer": pointer}
    missing_list = client_body(list_id, {"email": "a@example.com"})
    del missing_list["data"]["relationships"]
    assert post(server, account, missing_list).status_code == 400
    wrong_key = httpx.post(f"{server.url}/client/subscriptions", params={"company_id": "NOPE00"},
                           json=client_body(list_id, {"email": "a@example.com"}), headers={"revision": REVISION})
    assert wrong_key.status_code in (400, 401)
