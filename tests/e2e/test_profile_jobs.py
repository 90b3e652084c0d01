"""Profile bulk import, suppress and unsuppress jobs end to end (SDK, both databases)."""

from __future__ import annotations

import time

import pytest
from openapi_client.exceptions import ApiException

from tests.spec import assert_matches_spec


def wait_for_job(http, path: str, timeout: float = 10.0) -> dict:
    """Poll a job until it completes (bounded)."""
    deadline = time.time() + timeout
    while True:
        response = http.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        if body["data"]["attributes"]["status"] == "complete":
            return body
        assert time.time() < deadline, f"job not complete after {timeout}s: {body}"
        time.sleep(0.05)


def profile_item(**attributes) -> dict:
    return {"type": "profile", "attributes": attributes}


def import_body(profiles: list[dict], list_ids: tuple[str, ...] = ()) -> dict:
    data: dict = {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": profiles}}}
    if list_ids:
        data["relationships"] = {"lists": {"data": [{"type": "list", "id": lid} for lid in list_ids]}}
    return {"data": data}


def new_list(http, name: str, opt_in: str = "single_opt_in") -> str:
    response = http.post("/api/lists", json={"data": {"type": "list", "attributes": {
        "name": name, "opt_in_process": opt_in}}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def profile_by_email(http, email: str) -> dict | None:
    response = http.get("/api/profiles", params={"filter": f"equals(email,'{email}')",
                                                 "additional-fields[profile]": "subscriptions"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    return data[0] if data else None


def test_bulk_import_upserts_reports_errors_and_fills_lists(sdk, http):
    existing = http.post("/api/profiles", json={"data": {"type": "profile", "attributes": {
        "email": "ann@example.com", "first_name": "Ann", "properties": {"tier": "gold"}}}}).json()["data"]["id"]
    list_id = new_list(http, "Imported")
    rows = [
        profile_item(email="ANN@example.com", first_name=None, last_name="Lee", properties={"size": "M"}),
        profile_item(email="not-an-email", first_name="Broken"),
        profile_item(email="bob@example.com", phone_number="+15005550006", location={"city": "Boston"}),
    ]
    created = sdk.Profiles.bulk_import_profiles(import_body(rows, (list_id,)))
    job_id = created.data.id
    assert created.data.attributes.total_count == 3
    assert created.data.attributes.status in ("queued", "processing", "complete")

    body = wait_for_job(http, f"/api/profile-bulk-import-jobs/{job_id}")
    assert_matches_spec("get_bulk_import_profiles_job", 200, body)
    attributes = body["data"]["attributes"]
    assert (attributes["total_count"], attributes["completed_count"], attributes["failed_count"]) == (3, 2, 1)
    assert attributes["started_at"] and attributes["completed_at"] and attributes["expires_at"]
    links = body["data"]["relationships"]["import-errors"]["links"]
    assert set(links) == {"related"}

    errors = http.get(f"/api/profile-bulk-import-jobs/{job_id}/import-errors")
    assert_matches_spec("get_errors_for_bulk_import_profiles_job", 200, errors.json())
    [error] = errors.json()["data"]
    assert error["attributes"]["source"]["pointer"] == "/data/attributes/profiles/data/1/attributes/email"
    assert error["attributes"]["original_payload"] == {"email": "not-an-email", "first_name": "Broken"}
    assert sdk.Profiles.get_errors_for_bulk_import_profiles_job(job_id).data[0].attributes.code == "invalid"

    # The existing profile was updated (not duplicated); null did not clear first_name.
    ann = profile_by_email(http, "ann@example.com")
    assert ann["id"] == existing
    assert ann["attributes"]["first_name"] == "Ann" and ann["attributes"]["last_name"] == "Lee"
    assert ann["attributes"]["properties"] == {"tier": "gold", "size": "M"}
    bob = profile_by_email(http, "bob@example.com")
    assert bob["attributes"]["location"]["city"] == "Boston"

    ids = sdk.Profiles.get_profile_ids_for_bulk_import_profiles_job(job_id)
    assert sorted(item.id for item in ids.data) == sorted([existing, bob["id"]])
    assert_matches_spec("get_profile_ids_for_bulk_import_profiles_job", 200,
                        http.get(f"/api/profile-bulk-import-jobs/{job_id}/relationships/profiles").json())
    profiles = http.get(f"/api/profile-bulk-import-jobs/{job_id}/profiles", params={"page[size]": 1})
    assert_matches_spec("get_profiles_for_bulk_import_profiles_job", 200, profiles.json())
    assert len(profiles.json()["data"]) == 1 and "next" in profiles.json()["links"]
    assert profiles.json()["data"][0]["attributes"]["email"] in ("ann@example.com", "bob@example.com")

    lists = http.get(f"/api/profile-bulk-import-jobs/{job_id}/lists")
    assert_matches_spec("get_list_for_bulk_import_profiles_job", 200, lists.json())
    assert [item["id"] for item in lists.json()["data"]] == [list_id]
    assert [item.id for item in sdk.Profiles.get_list_ids_for_bulk_import_profiles_job(job_id).data] == [list_id]
    included = http.get(f"/api/profile-bulk-import-jobs/{job_id}", params={"include": "lists"}).json()
    assert_matches_spec("get_bulk_import_profiles_job", 200, included)
    assert included["data"]["relationships"]["lists"]["data"] == [{"type": "list", "id": list_id}]
    assert included["included"][0]["attributes"]["name"] == "Imported"

    members = http.get(f"/api/lists/{list_id}/relationships/profiles").json()["data"]
    assert sorted(m["id"] for m in members) == sorted([existing, bob["id"]])

    listed = http.get("/api/profile-bulk-import-jobs", params={"filter": "equals(status,'complete')",
                                                               "sort": "-created_at"})
    assert_matches_spec("get_bulk_import_profiles_jobs", 200, listed.json())
    assert [item["id"] for item in listed.json()["data"]] == [job_id]
    assert sdk.Profiles.get_bulk_import_profiles_jobs(filter="any(status,['queued','processing'])").data == []


def test_bulk_import_rejects_bad_requests_without_writing(http, other_account, server):
    from tests.conftest import sdk_for

    ok_row = profile_item(email="x@example.com")
    cases = [
        (import_body([]), 400, "/data/attributes/profiles/data"),
        (import_body([ok_row] * 10_001), 400, "/data/attributes/profiles/data"),
        (import_body([ok_row, profile_item(email="y@example.com", properties={"blob": "x" * 110_000})]), 400,
         "/data/attributes/profiles/data/1"),
        (import_body([ok_row], ("nope12",)), 404, "/data/relationships/lists/data/0/id"),
        (import_body([{"type": "event", "attributes": {}}]), 409, "/data/attributes/profiles/data/0/type"),
        ({"data": {"type": "profile-bulk-import-job", "attributes": {}}}, 400, "/data/attributes/profiles"),
    ]
    for body, status, pointer in cases:
        response = http.post("/api/profile-bulk-import-jobs", json=body)
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["source"] == {"pointer": pointer}
    assert http.get("/api/profile-bulk-import-jobs").json()["data"] == []

    job_id = http.post("/api/profile-bulk-import-jobs", json=import_body([ok_row])).json()["data"]["id"]
    theirs = sdk_for(server, other_account.key)
    with pytest.raises(ApiException) as err:
        theirs.Profiles.get_bulk_import_profiles_job(job_id)
    assert err.value.status == 404
    assert http.get(f"/api/profile-bulk-import-jobs/{job_id}/import-errors").status_code == 200
    assert http.get("/api/profile-bulk-import-jobs/nope/import-errors").status_code == 404


def suppression_body(kind: str, emails=(), list_id: str | None = None) -> dict:
    data: dict = {"type": kind, "attributes": {}}
    if emails:
        data["attributes"]["profiles"] = {"data": [profile_item(email=e) for e in emails]}
    if list_id:
        data["relationships"] = {"list": {"data": {"type": "list", "id": list_id}}}
    return {"data": data}


def suppression_of(http, email: str) -> list:
    return profile_by_email(http, email)["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]


def test_bulk_suppress_and_unsuppress_by_email_and_list(sdk, http, server):
    from menura.domain import consent

    http.post("/api/profiles", json={"data": {"type": "profile", "attributes": {"email": "ann@example.com"}}})
    created = sdk.Profiles.bulk_suppress_profiles(suppression_body(
        "profile-suppression-bulk-create-job", ["Ann@example.com", "new@example.com"]))
    job = wait_for_job(http, f"/api/profile-suppression-bulk-create-jobs/{created.data.id}")
    assert_matches_spec("get_bulk_suppress_profiles_job", 200, job)
    assert job["data"]["attributes"]["completed_count"] == 2
    # Klaviyo creates the profile of an unknown email and suppresses it.
    assert [s["reason"] for s in suppression_of(http, "ann@example.com")] == ["USER_SUPPRESSED"]
    assert [s["reason"] for s in suppression_of(http, "new@example.com")] == ["USER_SUPPRESSED"]

    # A whole list: its members are suppressed; one already suppressed is skipped.
    list_id = new_list(http, "To suppress")
    ids = [profile_by_email(http, e)["id"] for e in ("ann@example.com",)]
    ids.append(http.post("/api/profiles", json={"data": {"type": "profile", "attributes": {
        "email": "cat@example.com"}}}).json()["data"]["id"])
    sdk.Lists.add_profiles_to_list(list_id, {"data": [{"type": "profile", "id": i} for i in ids]})
    by_list = sdk.Profiles.bulk_suppress_profiles(suppression_body("profile-suppression-bulk-create-job",
                                                                   list_id=list_id))
    job = wait_for_job(http, f"/api/profile-suppression-bulk-create-jobs/{by_list.data.id}")
    assert (job["data"]["attributes"]["completed_count"], job["data"]["attributes"]["skipped_count"]) == (1, 1)
    assert job["data"]["relationships"]["lists"]["data"] == [{"type": "list", "id": list_id}]
    assert [s["reason"] for s in suppression_of(http, "cat@example.com")] == ["USER_SUPPRESSED"]

    listed = http.get("/api/profile-suppression-bulk-create-jobs",
                      params={"filter": f"equals(list_id,'{list_id}')", "sort": "-created"})
    assert_matches_spec("get_bulk_suppress_profiles_jobs", 200, listed.json())
    assert [item["id"] for item in listed.json()["data"]] == [by_list.data.id]
    assert len(sdk.Profiles.get_bulk_suppress_profiles_jobs(filter="equals(status,'complete')").data) == 2

    # Unsuppress removes USER_SUPPRESSED only: a hard bounce stays.
    bounced = profile_by_email(http, "new@example.com")["id"]
    with server.db.write() as conn:
        consent.suppress_email(conn, account_id=_account_of(http, server), profile_id=bounced,
                               reason="HARD_BOUNCE", now=consent_now())
    removed = sdk.Profiles.bulk_unsuppress_profiles(suppression_body(
        "profile-suppression-bulk-delete-job", ["ann@example.com", "new@example.com", "cat@example.com"]))
    job = wait_for_job(http, f"/api/profile-suppression-bulk-delete-jobs/{removed.data.id}")
    assert_matches_spec("get_bulk_unsuppress_profiles_job", 200, job)
    assert (job["data"]["attributes"]["completed_count"], job["data"]["attributes"]["skipped_count"]) == (2, 1)
    assert suppression_of(http, "ann@example.com") == []
    assert [s["reason"] for s in suppression_of(http, "new@example.com")] == ["HARD_BOUNCE"]
    unsuppress_jobs = http.get("/api/profile-suppression-bulk-delete-jobs")
    assert_matches_spec("get_bulk_unsuppress_profiles_jobs", 200, unsuppress_jobs.json())
    assert [item.id for item in sdk.Profiles.get_bulk_unsuppress_profiles_jobs().data] == [removed.data.id]
    assert sdk.Profiles.get_bulk_unsuppress_profiles_job(removed.data.id).data.attributes.status == "complete"


def _account_of(http, server) -> str:
    return http.get("/api/accounts").json()["data"][0]["id"]


def consent_now():
    from menura.clock import SystemClock

    return SystemClock().now()


def test_bulk_suppress_bad_requests(http):
    kind = "profile-suppression-bulk-create-job"
    cases = [
        (suppression_body(kind), 400, "/data"),
        (suppression_body(kind, ["a@example.com"], list_id="nope12"), 400, "/data"),
        (suppression_body(kind, [f"u{i}@example.com" for i in range(101)]), 400, "/data/attributes/profiles/data"),
        (suppression_body(kind, ["a@example.com", "broken"]), 400,
         "/data/attributes/profiles/data/1/attributes/email"),
        (suppression_body(kind, list_id="nope12"), 404, "/data/relationships/list/data/id"),
        (suppression_body("profile-suppression-bulk-delete-job", ["a@example.com"]), 409, "/data/type"),
        ({"data": {"type": kind, "attributes": {}, "relationships": {"segment": {"data": {
            "type": "segment", "id": "nope12"}}}}}, 404, "/data/relationships/segment/data/id"),
    ]
    for body, status, pointer in cases:
        response = http.post("/api/profile-suppression-bulk-create-jobs", json=body)
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["source"] == {"pointer": pointer}
    assert http.get("/api/profile-suppression-bulk-create-jobs").json()["data"] == []
    assert http.get("/api/profile-suppression-bulk-create-jobs", params={"page[size]": 5}).status_code == 400


def test_bulk_suppress_every_member_of_a_segment(sdk, http):
    for email, country in (("us1@example.com", "US"), ("us2@example.com", "US"), ("fr@example.com", "FR")):
        http.post("/api/profiles", json={"data": {"type": "profile", "attributes": {
            "email": email, "location": {"country": country}}}})
    condition = {"type": "profile-property", "property": "location['country']",
                 "filter": {"type": "string", "operator": "equals", "value": "US"}}
    made = http.post("/api/segments", json={"data": {"type": "segment", "attributes": {
        "name": "US", "definition": {"condition_groups": [{"conditions": [condition]}]}}}})
    assert made.status_code == 201, made.text
    segment_id = made.json()["data"]["id"]
    deadline = time.time() + 10
    while http.get(f"/api/segments/{segment_id}").json()["data"]["attributes"]["is_processing"]:
        assert time.time() < deadline
        time.sleep(0.05)
    created = sdk.Profiles.bulk_suppress_profiles({"data": {
        "type": "profile-suppression-bulk-create-job", "attributes": {},
        "relationships": {"segment": {"data": {"type": "segment", "id": segment_id}}}}})
    job = wait_for_job(http, f"/api/profile-suppression-bulk-create-jobs/{created.data.id}")
    assert job["data"]["attributes"]["total_count"] == 2 and job["data"]["attributes"]["completed_count"] == 2
    assert job["data"]["relationships"]["segments"]["data"] == [{"type": "segment", "id": segment_id}]
    assert [s["reason"] for s in suppression_of(http, "us1@example.com")] == ["USER_SUPPRESSED"]
    assert suppression_of(http, "fr@example.com") == []
    listed = http.get("/api/profile-suppression-bulk-create-jobs",
                      params={"filter": f"equals(segment_id,'{segment_id}')"})
    assert [item["id"] for item in listed.json()["data"]] == [created.data.id]
