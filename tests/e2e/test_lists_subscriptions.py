"""Bulk subscribe / unsubscribe, double opt-in (pending state, signed link, confirm page) and the
list events Klaviyo records, end to end on both databases."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx

from tests.e2e.test_profile_jobs import new_list, profile_by_email


def subscribe_body(profiles: list[dict], list_id: str | None = None, **attributes) -> dict:
    data: dict = {"type": "profile-subscription-bulk-create-job",
                  "attributes": {"profiles": {"data": profiles}, **attributes}}
    if list_id:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def unsubscribe_body(profiles: list[dict], list_id: str | None = None) -> dict:
    data: dict = {"type": "profile-subscription-bulk-delete-job", "attributes": {"profiles": {"data": profiles}}}
    if list_id:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def email_sub(email: str, **marketing) -> dict:
    return {"type": "profile", "attributes": {"email": email, "subscriptions": {
        "email": {"marketing": {"consent": "SUBSCRIBED", **marketing}}}}}


def wait_until(check, timeout: float = 10.0):
    deadline = time.time() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.time() < deadline, "condition not reached in time"
        time.sleep(0.05)


def email_marketing(http, email: str) -> dict | None:
    profile = profile_by_email(http, email)
    return profile["attributes"]["subscriptions"]["email"]["marketing"] if profile else None


def member_ids(http, list_id: str) -> list[str]:
    return [item["id"] for item in http.get(f"/api/lists/{list_id}/relationships/profiles").json()["data"]]


def metric_names(http, profile_id: str) -> list[str]:
    response = http.get("/api/events", params={"filter": f"equals(profile_id,'{profile_id}')", "include": "metric"})
    assert response.status_code == 200, response.text
    names = {m["id"]: m["attributes"]["name"] for m in response.json().get("included", [])}
    return sorted(names[e["relationships"]["metric"]["data"]["id"]] for e in response.json()["data"])


def test_subscribe_to_single_opt_in_list(sdk, http):
    list_id = new_list(http, "Newsletter", "single_opt_in")
    sdk.Profiles.bulk_subscribe_profiles(subscribe_body([
        email_sub("ann@example.com"),
        {"type": "profile", "attributes": {"email": "bob@example.com", "phone_number": "+15005550006",
                                           "subscriptions": {"sms": {"marketing": {"consent": "SUBSCRIBED"},
                                                                     "transactional": {"consent": "SUBSCRIBED"}}}}},
    ], list_id, custom_source="Footer form"))
    ann = wait_until(lambda: (m := email_marketing(http, "ann@example.com")) and m["consent"] == "SUBSCRIBED" and m)
    assert ann["method"] == "API" and ann["custom_method_detail"] == "Footer form"
    assert ann["double_optin"] is False and ann["can_receive_email_marketing"] is True
    bob = wait_until(lambda: profile_by_email(http, "bob@example.com"))
    sms = bob["attributes"]["subscriptions"]["sms"]
    assert sms["marketing"]["consent"] == "SUBSCRIBED" and sms["transactional"]["consent"] == "SUBSCRIBED"
    # Email was only set on bob's profile, not subscribed.
    assert bob["attributes"]["subscriptions"]["email"]["marketing"]["consent"] == "NEVER_SUBSCRIBED"
    ann_id = profile_by_email(http, "ann@example.com")["id"]
    wait_until(lambda: sorted(member_ids(http, list_id)) == sorted([ann_id, bob["id"]]))
    assert metric_names(http, ann_id) == ["Subscribed to List"]

    # Subscribing again to a list it is already in records no second event.
    sdk.Profiles.bulk_subscribe_profiles(subscribe_body([email_sub("ann@example.com")], list_id))
    sdk.Profiles.bulk_subscribe_profiles(subscribe_body([email_sub("zed@example.com")], list_id))
    wait_until(lambda: profile_by_email(http, "zed@example.com"))
    assert metric_names(http, ann_id) == ["Subscribed to List"]


def test_double_opt_in_waits_for_the_signed_link(sdk, http, server):
    from menura.domain import subscriptions

    list_id = new_list(http, "Confirmed news", "double_opt_in")
    sdk.Profiles.bulk_subscribe_profiles(subscribe_body([email_sub("dee@example.com")], list_id))
    profile = wait_until(lambda: profile_by_email(http, "dee@example.com"))
    def pending_rows() -> list:
        with server.db.read() as conn:
            return subscriptions.pending_confirmations(conn, _account(http), profile["id"])

    pending = wait_until(pending_rows)
    # Pending: not a member, consent unchanged, no subscription event yet (only the confirmation
    # email's "Received Email").
    assert member_ids(http, list_id) == []
    assert email_marketing(http, "dee@example.com")["consent"] == "NEVER_SUBSCRIBED"
    assert "Subscribed to List" not in metric_names(http, profile["id"])

    forged = httpx.get(f"{server.url}/p/confirm/{pending[0].id}.0000")
    assert forged.status_code == 404 and "text/html" in forged.headers["content-type"]
    url = subscriptions.confirmation_url(server.url, server.services.secret, pending[0].id)
    page = httpx.get(url)
    assert page.status_code == 200 and "Confirmed news" in page.text
    marketing = email_marketing(http, "dee@example.com")
    assert marketing["consent"] == "SUBSCRIBED" and marketing["double_optin"] is True
    assert member_ids(http, list_id) == [profile["id"]]
    assert metric_names(http, profile["id"]).count("Subscribed to List") == 1
    again = httpx.get(url)
    assert again.status_code == 200 and "nothing left to confirm" in again.text

    # A historical import skips double opt-in and keeps the given consent time.
    consented = (datetime.now(UTC) - timedelta(days=30)).replace(microsecond=0)
    sdk.Profiles.bulk_subscribe_profiles(subscribe_body(
        [email_sub("old@example.com", consented_at=consented.isoformat())], list_id, historical_import=True))
    old = wait_until(lambda: (m := email_marketing(http, "old@example.com")) and m["consent"] == "SUBSCRIBED" and m)
    assert datetime.fromisoformat(old["consent_timestamp"]) == consented


def _account(http) -> str:
    return http.get("/api/accounts").json()["data"][0]["id"]


def test_unsubscribe_from_list_or_globally(sdk, http):
    list_id = new_list(http, "Leaving", "single_opt_in")
    sdk.Profiles.bulk_subscribe_profiles(subscribe_body([email_sub("in@example.com"), email_sub("out@example.com")],
                                                        list_id))
    wait_until(lambda: len(member_ids(http, list_id)) == 2)
    inside = profile_by_email(http, "in@example.com")["id"]
    sdk.Lists.remove_profiles_from_list(list_id, {"data": [{"type": "profile",
                                                            "id": profile_by_email(http, "out@example.com")["id"]}]})
    unsub = {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}
    sdk.Profiles.bulk_unsubscribe_profiles(unsubscribe_body([
        {"type": "profile", "attributes": {"email": "in@example.com", "subscriptions": unsub}},
        {"type": "profile", "attributes": {"email": "out@example.com", "subscriptions": unsub}},
        {"type": "profile", "attributes": {"email": "never@example.com", "subscriptions": unsub}},
    ], list_id))
    # A member is unsubscribed from the list: removed, list-suppressed, still subscribed elsewhere.
    wait_until(lambda: member_ids(http, list_id) == [])
    member = wait_until(lambda: (m := email_marketing(http, "in@example.com")) and m["list_suppressions"] and m)
    assert member["consent"] == "SUBSCRIBED"
    assert [(s["list_id"], s["reason"]) for s in member["list_suppressions"]] == [(list_id, "UNSUBSCRIBE")]
    assert "Unsubscribed from List" in metric_names(http, inside)
    # A profile outside the list is unsubscribed globally; an unknown one is created, then unsubscribed.
    for email in ("out@example.com", "never@example.com"):
        marketing = wait_until(lambda e=email: (m := email_marketing(http, e)) and m["consent"] == "UNSUBSCRIBED" and m)
        assert [s["reason"] for s in marketing["suppression"]] == ["UNSUBSCRIBE"]

    # Subscribing again lifts the list suppression and the global unsubscribe.
    sdk.Profiles.bulk_subscribe_profiles(subscribe_body([email_sub("in@example.com"), email_sub("out@example.com")],
                                                        list_id))
    wait_until(lambda: len(member_ids(http, list_id)) == 2)
    assert email_marketing(http, "in@example.com")["list_suppressions"] == []
    assert email_marketing(http, "out@example.com")["can_receive_email_marketing"] is True


def test_subscription_bad_requests(http):
    list_id = new_list(http, "Strict")
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    cases = [
        (subscribe_body([]), 400, "/data/attributes/profiles/data"),
        (subscribe_body([email_sub("a@example.com")] * 1001), 400, "/data/attributes/profiles/data"),
        (subscribe_body([email_sub("broken")]), 400, "/data/attributes/profiles/data/0/attributes/email"),
        (subscribe_body([email_sub("a@example.com", consented_at="2020-01-01T00:00:00Z")]), 400,
         "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consented_at"),
        (subscribe_body([email_sub("a@example.com")], historical_import=True), 400,
         "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consented_at"),
        (subscribe_body([email_sub("a@example.com", consented_at=future)], historical_import=True), 400,
         "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consented_at"),
        (subscribe_body([{"type": "profile", "attributes": {"phone_number": "+15005550006", "subscriptions": {
            "email": {"marketing": {"consent": "SUBSCRIBED"}}}}}]), 400,
         "/data/attributes/profiles/data/0/attributes/email"),
        (subscribe_body([{"type": "profile", "attributes": {"email": "a@example.com", "subscriptions": {
            "email": {"marketing": {"consent": "UNSUBSCRIBED"}}}}}]), 400,
         "/data/attributes/profiles/data/0/attributes/subscriptions/email/marketing/consent"),
        (subscribe_body([email_sub("a@example.com")], "nope12"), 404, "/data/relationships/list/data/id"),
        (subscribe_body([{"type": "profile", "id": "01HZZZZZZZZZZZZZZZZZZZZZZZ",
                          "attributes": {"subscriptions": {"email": {"marketing": {"consent": "SUBSCRIBED"}}}}}],
                        list_id), 404, "/data/attributes/profiles/data/0/id"),
    ]
    for body, status, pointer in cases:
        response = http.post("/api/profile-subscription-bulk-create-jobs", json=body)
        assert response.status_code == status, (pointer, response.text)
        assert response.json()["errors"][0]["source"] == {"pointer": pointer}
    too_many = unsubscribe_body([{"type": "profile", "attributes": {
        "email": "a@example.com", "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}}}}] * 101)
    assert http.post("/api/profile-subscription-bulk-delete-jobs", json=too_many).status_code == 400
    wrong = http.post("/api/profile-subscription-bulk-delete-jobs", json=subscribe_body([email_sub("a@example.com")]))
    assert wrong.status_code == 409
    time.sleep(0.2)
    assert profile_by_email(http, "a@example.com") is None


def test_double_opt_in_sends_the_confirmation_email(sdk, http, server):
    """With no relay configured the message lands in the outbox; following its link confirms."""
    import re

    from menura.delivery import outbox
    from menura.store import delivery as delivery_store

    list_id = new_list(http, "Weekly letter", "double_opt_in")
    sdk.Profiles.bulk_subscribe_profiles(subscribe_body([email_sub("conf@example.com")], list_id))
    account_id = _account(http)

    def confirmation() -> list:
        with server.db.read() as conn:
            return [m for m in delivery_store.list_messages(conn, account_id=account_id)
                    if m.send_key.startswith("confirm:") and m.status in ("captured", "sent", "received")]

    message = wait_until(confirmation)[0]
    assert message.to_address == "conf@example.com" and "Weekly letter" in message.subject
    assert message.marketing is False
    with server.db.read() as conn:
        body = outbox.html_part(conn, message.id)
    link = re.search(r'href="([^"]*/p/confirm/[^"]+)"', body)
    assert link, body
    profile = profile_by_email(http, "conf@example.com")
    assert member_ids(http, list_id) == []
    # The link's host is the configured public URL; follow its path on this test server.
    path = "/p/confirm/" + link.group(1).split("/p/confirm/", 1)[1]
    page = httpx.get(server.url + path, follow_redirects=True)
    assert page.status_code == 200 and "Weekly letter" in page.text
    assert member_ids(http, list_id) == [profile["id"]]
