"""Client-side event endpoints (public key in company_id; the Python SDK has no client methods)."""

from __future__ import annotations

import httpx

from tests.conftest import REVISION
from tests.e2e.test_events import event_body, wait_for_events

HEADERS = {"revision": REVISION, "Content-Type": "application/json"}


def test_create_client_event(server, account, http):
    body = event_body("client@example.com", time_="2024-04-01T00:00:00Z", unique_id="c1")
    response = httpx.post(f"{server.url}/client/events", params={"company_id": account.id}, json=body,
                          headers=HEADERS)
    assert response.status_code == 202, response.text
    assert response.content == b""
    [event] = wait_for_events(http, 1)
    profile = http.get(f"/api/events/{event['id']}/profile").json()["data"]
    assert profile["attributes"]["email"] == "client@example.com"


def test_client_bulk_create_and_errors(server, account, http):
    body = {"data": {"type": "event-bulk-create", "attributes": {
        "profile": {"data": {"type": "profile", "attributes": {"email": "cb@example.com"}}},
        "events": {"data": [{"type": "event", "attributes": {
            "properties": {"n": n}, "time": f"2024-04-01T00:00:0{n}Z",
            "metric": {"data": {"type": "metric", "attributes": {"name": "Viewed"}}}}} for n in range(3)]}}}}
    url = f"{server.url}/client/event-bulk-create"
    response = httpx.post(url, params={"company_id": account.id}, json=body, headers=HEADERS)
    assert response.status_code == 202, response.text
    wait_for_events(http, 3)

    body["data"]["attributes"]["events"]["data"][1]["attributes"]["time"] = "soon"
    response = httpx.post(url, params={"company_id": account.id}, json=body, headers=HEADERS)
    assert response.status_code == 400
    assert response.json()["errors"][0]["source"] == {"pointer": "/data/attributes/events/data/1/attributes/time"}
    missing_key = httpx.post(url, json=body, headers=HEADERS)
    assert missing_key.status_code == 400
    assert missing_key.json()["errors"][0]["source"] == {"parameter": "company_id"}
    wrong_key = httpx.post(url, params={"company_id": "NOPE99"}, json=body, headers=HEADERS)
    assert wrong_key.status_code == 400


def test_client_event_does_not_change_existing_identifiers(server, account, http, sdk):
    sdk.Events.create_event(event_body("id@example.com", unique_id="1", profile_extra={"external_id": "ext-1"}))
    wait_for_events(http, 1)
    body = event_body("id@example.com", unique_id="2", profile_extra={"external_id": "ext-2", "first_name": "Cli"})
    response = httpx.post(f"{server.url}/client/events", params={"company_id": account.id}, json=body,
                          headers=HEADERS)
    assert response.status_code == 202
    events = wait_for_events(http, 2)
    profile = http.get(f"/api/events/{events[-1]['id']}/profile").json()["data"]
    assert profile["attributes"]["external_id"] == "ext-1"
    assert profile["attributes"]["first_name"] == "Cli"
