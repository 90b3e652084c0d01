"""Lists category end to end through the official SDK, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from openapi_client.exceptions import ApiException

from tests.spec import assert_matches_spec


def new_list(sdk, name: str, opt_in: str | None = None) -> str:
    attributes = {"name": name}
    if opt_in is not None:
        attributes["opt_in_process"] = opt_in
    return sdk.Lists.create_list({"data": {"type": "list", "attributes": attributes}}).data.id


def new_profile(http, email: str, **extra) -> str:
    response = http.post("/api/profiles", json={"data": {"type": "profile",
                                                         "attributes": {"email": email, **extra}}})
    assert response.status_code == 201, response.text
    return response.json()["data"]["id"]


def members_body(*ids: str) -> dict:
    return {"data": [{"type": "profile", "id": pid} for pid in ids]}


def test_create_get_update_delete_list(sdk, http):
    created = http.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": "Newsletter"}}})
    assert created.status_code == 201, created.text
    assert_matches_spec("create_list", 201, created.json())
    data = created.json()["data"]
    list_id = data["id"]
    assert len(list_id) == 6 and list_id.isalnum()
    # Klaviyo: lists are double opt-in unless set otherwise.
    assert data["attributes"]["opt_in_process"] == "double_opt_in"
    assert data["links"]["self"].endswith(f"/api/lists/{list_id}/")
    assert set(data["relationships"]) == {"profiles", "tags", "flow-triggers"}

    one = sdk.Lists.get_list(list_id)
    assert one.data.attributes.name == "Newsletter"
    response = http.get(f"/api/lists/{list_id}", params={"additional-fields[list]": "profile_count"})
    assert response.status_code == 200
    assert_matches_spec("get_list", 200, response.json())
    assert response.json()["data"]["attributes"]["profile_count"] == 0
    assert "profile_count" not in http.get(f"/api/lists/{list_id}").json()["data"]["attributes"]

    updated = sdk.Lists.update_list(list_id, {"data": {"type": "list", "id": list_id, "attributes": {
        "name": "Weekly", "opt_in_process": "single_opt_in"}}})
    assert updated.data.attributes.name == "Weekly"
    assert updated.data.attributes.opt_in_process == "single_opt_in"
    raw = http.patch(f"/api/lists/{list_id}", json={"data": {"type": "list", "id": list_id,
                                                             "attributes": {"name": "Weekly 2"}}})
    assert_matches_spec("update_list", 200, raw.json())
    assert raw.json()["data"]["attributes"]["opt_in_process"] == "single_opt_in"

    sdk.Lists.delete_list(list_id)
    with pytest.raises(ApiException) as err:
        sdk.Lists.get_list(list_id)
    assert err.value.status == 404


def test_get_lists_filter_sort_and_pages(sdk, http):
    ids = [new_list(sdk, f"List {i:02d}") for i in range(12)]
    first = http.get("/api/lists", params={"sort": "name"})
    assert first.status_code == 200
    body = first.json()
    assert_matches_spec("get_lists", 200, body)
    assert [item["attributes"]["name"] for item in body["data"]] == [f"List {i:02d}" for i in range(10)]
    second = http.get(body["links"]["next"])
    assert [item["attributes"]["name"] for item in second.json()["data"]] == ["List 10", "List 11"]
    assert "next" not in second.json()["links"]

    result = sdk.Lists.get_lists(filter=f"any(id,['{ids[3]}','{ids[5]}'])", sort="-name")
    assert [item.id for item in result.data] == [ids[5], ids[3]]
    named = sdk.Lists.get_lists(filter="equals(name,'List 07')")
    assert [item.id for item in named.data] == [ids[7]]
    later = http.get("/api/lists", params={"filter": "greater-than(created,2000-01-01T00:00:00Z)",
                                           "fields[list]": "name"})
    assert later.status_code == 200
    assert set(later.json()["data"][0]["attributes"]) == {"name"}


def test_list_bad_input(sdk, http, other_account, server):
    from tests.conftest import sdk_for

    missing_name = http.post("/api/lists", json={"data": {"type": "list", "attributes": {}}})
    assert missing_name.status_code == 400
    assert missing_name.json()["errors"][0]["source"] == {"pointer": "/data/attributes/name"}
    blank = http.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": "  "}}})
    assert blank.status_code == 400
    bad_opt_in = http.post("/api/lists", json={"data": {"type": "list", "attributes": {
        "name": "x", "opt_in_process": "triple_opt_in"}}})
    assert bad_opt_in.status_code == 400
    assert bad_opt_in.json()["errors"][0]["source"] == {"pointer": "/data/attributes/opt_in_process"}
    wrong_type = http.post("/api/lists", json={"data": {"type": "segment", "attributes": {"name": "x"}}})
    assert wrong_type.status_code == 409
    assert wrong_type.json()["errors"][0]["source"] == {"pointer": "/data/type"}
    assert http.get("/api/lists", params={"page[size]": 11}).status_code == 400
    assert http.get("/api/lists", params={"filter": "equals(opt_in_process,'x')"}).status_code == 400
    assert http.get("/api/lists", params={"filter": "less-than(created,2020-01-01)"}).status_code == 400

    list_id = new_list(sdk, "Mine")
    mismatch = http.patch(f"/api/lists/{list_id}", json={"data": {"type": "list", "id": "other",
                                                                  "attributes": {"name": "x"}}})
    assert mismatch.status_code == 409
    # Another account's list does not exist for this account, and is untouched.
    theirs = sdk_for(server, other_account.key)
    for call in (lambda: theirs.Lists.get_list(list_id), lambda: theirs.Lists.delete_list(list_id)):
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 404
    assert sdk.Lists.get_list(list_id).data.id == list_id
    assert [item.id for item in theirs.Lists.get_lists().data] == []


def test_members_add_list_filter_and_remove(sdk, http):
    list_id = new_list(sdk, "VIP", "single_opt_in")
    ann = new_profile(http, "ann@example.com", phone_number="+15005550006")
    bob = new_profile(http, "bob@example.com")
    cat = new_profile(http, "cat@example.com")
    sdk.Lists.add_profiles_to_list(list_id, members_body(ann, bob))
    sdk.Lists.add_profiles_to_list(list_id, members_body(cat, ann))  # ann again: no duplicate

    ids = sdk.Lists.get_profile_ids_for_list(list_id)
    assert [item.id for item in ids.data] == [ann, bob, cat]
    raw_ids = http.get(f"/api/lists/{list_id}/relationships/profiles", params={"page[size]": 2})
    assert_matches_spec("get_profile_ids_for_list", 200, raw_ids.json())
    assert len(raw_ids.json()["data"]) == 2 and "next" in raw_ids.json()["links"]
    newest_first = http.get(f"/api/lists/{list_id}/relationships/profiles", params={"sort": "-joined_group_at"})
    assert [item["id"] for item in newest_first.json()["data"]] == [cat, bob, ann]

    by_email = sdk.Lists.get_profile_ids_for_list(list_id, filter="any(email,['BOB@example.com','zed@x.io'])")
    assert [item.id for item in by_email.data] == [bob]
    by_phone = http.get(f"/api/lists/{list_id}/relationships/profiles",
                        params={"filter": "equals(phone_number,'+15005550006')"})
    assert [item["id"] for item in by_phone.json()["data"]] == [ann]

    full = http.get(f"/api/lists/{list_id}/profiles", params={"additional-fields[profile]": "subscriptions"})
    assert full.status_code == 200, full.text
    assert_matches_spec("get_profiles_for_list", 200, full.json())
    first = full.json()["data"][0]
    assert first["id"] == ann and first["attributes"]["email"] == "ann@example.com"
    assert first["attributes"]["joined_group_at"] is not None
    assert "subscriptions" in first["attributes"]
    # With a sparse fieldset the SDK answers plain dicts.
    sparse = sdk.Lists.get_profiles_for_list(list_id, fields_profile=["email", "joined_group_at"])
    assert [p["attributes"]["email"] for p in sparse["data"]] == ["ann@example.com", "bob@example.com",
                                                                  "cat@example.com"]
    assert set(sparse["data"][0]["attributes"]) == {"email", "joined_group_at"}
    # ann and bob joined in one call, cat in a later one (re-adding ann kept her first join time).
    joined = full.json()["data"][2]["attributes"]["joined_group_at"]
    assert joined > full.json()["data"][0]["attributes"]["joined_group_at"]
    after = http.get(f"/api/lists/{list_id}/profiles", params={"filter": f"greater-or-equal(joined_group_at,{joined})"})
    assert [p["id"] for p in after.json()["data"]] == [cat]
    before = http.get(f"/api/lists/{list_id}/profiles", params={"filter": f"less-than(joined_group_at,{joined})"})
    assert [p["id"] for p in before.json()["data"]] == [ann, bob]

    counted = sdk.Lists.get_list(list_id, additional_fields_list=["profile_count"])
    assert counted.data.attributes.profile_count == 3

    sdk.Lists.remove_profiles_from_list(list_id, members_body(bob))
    assert [item.id for item in sdk.Lists.get_profile_ids_for_list(list_id).data] == [ann, cat]
    lists_of_ann = http.get(f"/api/profiles/{ann}/relationships/lists").json()["data"]
    assert lists_of_ann == [{"type": "list", "id": list_id}]


def test_member_bad_input_writes_nothing(sdk, http, other_account, server):
    from tests.conftest import sdk_for

    list_id = new_list(sdk, "Members")
    ann = new_profile(http, "ann@example.com")
    unknown = http.post(f"/api/lists/{list_id}/relationships/profiles",
                        json=members_body(ann, "01HZZZZZZZZZZZZZZZZZZZZZZZ"))
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["source"] == {"pointer": "/data/1/id"}
    assert sdk.Lists.get_profile_ids_for_list(list_id).data == []
    wrong = http.post(f"/api/lists/{list_id}/relationships/profiles", json={"data": [{"type": "list", "id": ann}]})
    assert wrong.status_code == 409
    too_many = http.post(f"/api/lists/{list_id}/relationships/profiles",
                         json=members_body(*[ann] * 1001))
    assert too_many.status_code == 400
    assert http.post("/api/lists/nope12/relationships/profiles", json=members_body(ann)).status_code == 404
    # Another account cannot add its profiles to this list, nor this list's profiles to its lists.
    theirs = sdk_for(server, other_account.key)
    their_list = new_list(theirs, "Theirs")
    with pytest.raises(ApiException) as err:
        theirs.Lists.add_profiles_to_list(their_list, members_body(ann))
    assert err.value.status == 404
    assert http.get(f"/api/lists/{list_id}/profiles", params={"filter": "equals(joined_group_at,2020-01-01)"}
                    ).status_code == 400


def test_tags_and_flow_triggers_of_a_list(sdk, http):
    list_id = new_list(sdk, "Tagged")
    tag = http.post("/api/tags", json={"data": {"type": "tag", "attributes": {"name": "Spring"}}})
    assert tag.status_code == 201, tag.text
    tag_id = tag.json()["data"]["id"]
    tagged = http.post(f"/api/tags/{tag_id}/relationships/lists", json={"data": [{"type": "list", "id": list_id}]})
    assert tagged.status_code == 204, tagged.text

    tags = http.get(f"/api/lists/{list_id}/tags")
    assert_matches_spec("get_tags_for_list", 200, tags.json())
    assert [(t["id"], t["attributes"]["name"]) for t in tags.json()["data"]] == [(tag_id, "Spring")]
    ids = sdk.Lists.get_tag_ids_for_list(list_id)
    assert [t.id for t in ids.data] == [tag_id]
    assert_matches_spec("get_tag_ids_for_list", 200, http.get(f"/api/lists/{list_id}/relationships/tags").json())

    included = http.get(f"/api/lists/{list_id}", params={"include": "tags,flow-triggers"}).json()
    assert_matches_spec("get_list", 200, included)
    assert included["data"]["relationships"]["tags"]["data"] == [{"type": "tag", "id": tag_id}]
    assert included["data"]["relationships"]["flow-triggers"]["data"] == []
    assert [item["id"] for item in included["included"]] == [tag_id]
    listed = http.get("/api/lists", params={"include": "tags"}).json()
    assert_matches_spec("get_lists", 200, listed)
    assert listed["included"][0]["id"] == tag_id

    flows = http.get(f"/api/lists/{list_id}/flow-triggers")
    assert flows.status_code == 200
    assert_matches_spec("get_flows_triggered_by_list", 200, flows.json())
    assert sdk.Lists.get_flows_triggered_by_list(list_id).data == []
    flow_ids = http.get(f"/api/lists/{list_id}/relationships/flow-triggers")
    assert_matches_spec("get_ids_for_flows_triggered_by_list", 200, flow_ids.json())
    assert sdk.Lists.get_ids_for_flows_triggered_by_list(list_id).data == []
    assert http.get("/api/lists/nope12/flow-triggers").status_code == 404

    # Deleting the list removes its tag assignments.
    sdk.Lists.delete_list(list_id)
    remaining = http.get(f"/api/tags/{tag_id}/relationships/lists").json()["data"]
    assert remaining == []


def test_merge_moves_memberships_and_deletion_removes_them(sdk, http):
    list_a, list_b = new_list(sdk, "A", "single_opt_in"), new_list(sdk, "B", "single_opt_in")
    keep = new_profile(http, "keep@example.com")
    gone = new_profile(http, "gone@example.com")
    sdk.Lists.add_profiles_to_list(list_a, members_body(gone))
    sdk.Lists.add_profiles_to_list(list_b, members_body(keep, gone))
    merged = http.post("/api/profile-merge", json={"data": {"type": "profile-merge", "id": keep, "relationships": {
        "profiles": {"data": [{"type": "profile", "id": gone}]}}}})
    assert merged.status_code in (200, 201), merged.text
    assert [item.id for item in sdk.Lists.get_profile_ids_for_list(list_a).data] == [keep]
    assert [item.id for item in sdk.Lists.get_profile_ids_for_list(list_b).data] == [keep]

    deletion = http.post("/api/data-privacy-deletion-jobs", json={"data": {
        "type": "data-privacy-deletion-job",
        "attributes": {"profile": {"data": {"type": "profile", "attributes": {"email": "keep@example.com"}}}}}})
    assert deletion.status_code == 202, deletion.text
    deadline = time.time() + 10
    while sdk.Lists.get_profile_ids_for_list(list_a).data:
        assert time.time() < deadline, "profile still a member after its deletion"
        time.sleep(0.05)
    assert sdk.Lists.get_list(list_b, additional_fields_list=["profile_count"]).data.attributes.profile_count == 0
