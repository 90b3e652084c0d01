"""Data privacy deletion end to end: the request is accepted (202) as a durable job, and the worker
deletes every matching profile with its events, list memberships and push tokens for good."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import func, select

from menura.store.event_tables import events
from tests.spec import assert_matches_spec


def deletion_body(**identifiers) -> dict:
    profile: dict = {"type": "profile", "attributes": {}}
    if "id" in identifiers:
        profile["id"] = identifiers.pop("id")
    profile["attributes"] = identifiers
    return {"data": {"type": "data-privacy-deletion-job", "attributes": {"profile": {"data": profile}}}}


def create_profile(http: httpx.Client, **attributes) -> str:
    response = http.post("/api/profiles", json={"data": {"type": "profile", "attributes": attributes}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def wait_gone(http: httpx.Client, pid: str, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while http.get(f"/api/profiles/{pid}").status_code != 404:
        assert time.time() < deadline, "profile was not deleted"
        time.sleep(0.05)


def test_deletion_removes_profile_events_memberships(sdk, server, http, account):
    from menura.domain.events import record_event

    pid = create_profile(http, email="forget.me@x.io", phone_number="+15005550006")
    keep = create_profile(http, email="keep@x.io")
    now = server.services.clock.now()
    with server.db.write() as conn:
        for profile_id in (pid, keep):
            record_event(conn, account_id=account.id, profile_id=profile_id, metric_name="Viewed Product",
                         properties={"sku": "1"}, time=now, now=now)
    made = http.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": "Gone"}}})
    list_id = made.json()["data"]["id"]
    http.post(f"/api/lists/{list_id}/relationships/profiles", json={"data": [{"type": "profile", "id": pid}]})
    http.post("/api/push-tokens", json={"data": {"type": "push-token", "attributes": {
        "token": "privacy-token", "platform": "android", "vendor": "fcm",
        "profile": {"data": {"type": "profile", "id": pid, "attributes": {}}}}}})

    result = sdk.Data_Privacy.request_profile_deletion(deletion_body(email="Forget.Me@x.io"))
    assert result is None
    wait_gone(http, pid)

    with server.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(events).where(events.c.profile_id == pid)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(events).where(events.c.profile_id == keep)).scalar() == 1
    members = http.get(f"/api/lists/{list_id}/relationships/profiles").json()["data"]
    assert members == []
    assert http.get("/api/push-tokens").json()["data"] == []
    assert http.get(f"/api/profiles/{keep}").status_code == 200


def test_deletion_by_id_and_by_phone(http):
    by_id = create_profile(http, external_id="del-1")
    by_phone = create_profile(http, phone_number="+15005550007")
    response = http.post("/api/data-privacy-deletion-jobs", json=deletion_body(id=by_id))
    assert response.status_code == 202 and response.content == b""
    response = http.post("/api/data-privacy-deletion-jobs", json=deletion_body(phone_number="+1 500 555 0007"))
    assert response.status_code == 202
    wait_gone(http, by_id)
    wait_gone(http, by_phone)


@pytest.mark.parametrize(("identifiers", "pointer"), [
    ({"email": "a@x.io", "phone_number": "+15005550006"}, "/data/attributes/profile/data"),
    ({}, "/data/attributes/profile/data"),
    ({"email": "nope"}, "/data/attributes/profile/data/attributes/email"),
])
def test_deletion_needs_exactly_one_valid_identifier(http, identifiers, pointer):
    response = http.post("/api/data-privacy-deletion-jobs", json=deletion_body(**identifiers))
    assert response.status_code == 400, response.text
    assert_matches_spec("request_profile_deletion", 400, response.json())
    assert response.json()["errors"][0]["source"]["pointer"] == pointer


def test_wrong_type_is_rejected(http):
    body = deletion_body(email="a@x.io")
    body["data"]["type"] = "profile"
    assert http.post("/api/data-privacy-deletion-jobs", json=body).status_code == 409
