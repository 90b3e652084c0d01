"""Tags category end to end: every operation through the official SDK, bodies against Klaviyo's spec,
filters, sorts, pages, include, sparse fieldsets, limits, exclusive groups and errors."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from openapi_client.exceptions import ApiException

from menura.clock import SystemClock
from menura.domain import tags as rules
from menura.store import tags as store
from tests.e2e.paging import walk
from tests.spec import assert_matches_spec

RESOURCES = [  # relationship, resource type, SDK: list ids, tag, untag
    ("lists", "list", "get_list_ids_for_tag", "tag_lists", "remove_tag_from_lists"),
    ("segments", "segment", "get_segment_ids_for_tag", "tag_segments", "remove_tag_from_segments"),
    ("campaigns", "campaign", "get_campaign_ids_for_tag", "tag_campaigns", "remove_tag_from_campaigns"),
    ("flows", "flow", "get_flow_ids_for_tag", "tag_flows", "remove_tag_from_flows"),
]
OPERATION = {rel: (get_op, add_op, remove_op) for rel, _, get_op, add_op, remove_op in RESOURCES}


# --------------------------------------------------------------------------- helpers


def tag_body(name: str, group_id: str | None = None) -> dict:
    data: dict = {"type": "tag", "attributes": {"name": name}}
    if group_id is not None:
        data["relationships"] = {"tag-group": {"data": {"type": "tag-group", "id": group_id}}}
    return {"data": data}


def group_body(name: str, exclusive: bool | None = None) -> dict:
    attributes: dict = {"name": name}
    if exclusive is not None:
        attributes["exclusive"] = exclusive
    return {"data": {"type": "tag-group", "attributes": attributes}}


def ids_body(rtype: str, *ids: str) -> dict:
    return {"data": [{"type": rtype, "id": rid} for rid in ids]}


def make_tag(http: httpx.Client, name: str, group_id: str | None = None) -> dict:
    response = http.post("/api/tags", json=tag_body(name, group_id))
    assert response.status_code == 201, response.text
    return response.json()["data"]


def make_group(http: httpx.Client, name: str, exclusive: bool = False) -> dict:
    response = http.post("/api/tag-groups", json=group_body(name, exclusive))
    assert response.status_code == 201, response.text
    return response.json()["data"]


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert_matches_spec("get_tags", status, body)
    return body["errors"][0]


Registry = dict[tuple[str, str], set[str]]


@pytest.fixture
def known(monkeypatch) -> Registry:
    """Lists, segments, campaigns and flows that 'exist', per (account, type), through the checker
    registry later categories fill in."""
    registry: Registry = {}

    def checker_for(rtype: str) -> Callable:
        def exists(_conn, account_id, ids):
            return set(ids) & registry.get((account_id, rtype), set())
        return exists

    for _, rtype, *_ in RESOURCES:
        monkeypatch.setitem(rules.RESOURCE_EXISTS, rtype, checker_for(rtype))
    return registry


def default_group_id(server, account) -> str:
    with server.db.write() as conn:
        return rules.default_group(conn, account.id, SystemClock().now()).id


# --------------------------------------------------------------------------- SDK: every operation


def test_sdk_tag_lifecycle(sdk, http):
    created = sdk.Tags.create_tag(tag_body("vip"))
    tag_id = created.data.id
    uuid.UUID(tag_id)
    assert created.data.attributes.name == "vip"

    assert sdk.Tags.get_tag(tag_id).data.attributes.name == "vip"
    sdk.Tags.update_tag(tag_id, {"data": {"type": "tag", "id": tag_id, "attributes": {"name": "VIP"}}})
    listed = sdk.Tags.get_tags(filter="equals(name,'VIP')")
    assert [t.id for t in listed.data] == [tag_id]

    sdk.Tags.delete_tag(tag_id)
    with pytest.raises(ApiException) as err:
        sdk.Tags.get_tag(tag_id)
    assert err.value.status == 404


def test_sdk_tag_group_lifecycle(sdk):
    group = sdk.Tags.create_tag_group(group_body("Seasons", exclusive=True)).data
    uuid.UUID(group.id)
    assert (group.attributes.name, group.attributes.exclusive, group.attributes.default) == ("Seasons", True, False)
    tag = sdk.Tags.create_tag(tag_body("winter", group.id)).data

    assert sdk.Tags.get_tag_group(group.id).data.attributes.exclusive is True
    sdk.Tags.update_tag_group(group.id, {"data": {"type": "tag-group", "id": group.id,
                                                  "attributes": {"name": "Seasons 2026"}}})
    groups = sdk.Tags.get_tag_groups(sort="name")
    assert [g.attributes.name for g in groups.data] == ["Default", "Seasons 2026"]
    assert [t.id for t in sdk.Tags.get_tags_for_tag_group(group.id).data] == [tag.id]
    assert [t.id for t in sdk.Tags.get_tag_ids_for_tag_group(group.id).data] == [tag.id]

    sdk.Tags.delete_tag_group(group.id)
    with pytest.raises(ApiException) as err:
        sdk.Tags.get_tag(tag.id)
    assert err.value.status == 404


def test_sdk_tag_group_of_a_tag(sdk):
    group = sdk.Tags.create_tag_group(group_body("Team")).data
    tag = sdk.Tags.create_tag(tag_body("growth", group.id)).data
    assert sdk.Tags.get_tag_group_for_tag(tag.id).data.id == group.id
    assert sdk.Tags.get_tag_group_id_for_tag(tag.id).data.id == group.id


@pytest.mark.parametrize("relationship,rtype,get_op,add_op,remove_op", RESOURCES)
def test_sdk_tagging_resources(sdk, account, known, relationship, rtype, get_op, add_op, remove_op):
    known[(account.id, rtype)] = {"r1", "r2", "r3"}
    tag_id = sdk.Tags.create_tag(tag_body("holiday")).data.id

    getattr(sdk.Tags, add_op)(tag_id, ids_body(rtype, "r2", "r1"))
    assert [r.id for r in getattr(sdk.Tags, get_op)(tag_id).data] == ["r1", "r2"]
    getattr(sdk.Tags, remove_op)(tag_id, ids_body(rtype, "r1"))
    assert [r.id for r in getattr(sdk.Tags, get_op)(tag_id).data] == ["r2"]


# --------------------------------------------------------------------------- bodies against the spec


def test_bodies_match_spec(http, account, known):
    known[(account.id, "list")] = {"L1"}
    group = make_group(http, "Channels")
    created = http.post("/api/tags", json=tag_body("email", group["id"]))
    assert_matches_spec("create_tag", 201, created.json())
    tag_id = created.json()["data"]["id"]
    created_group = http.post("/api/tag-groups", json=group_body("Other"))
    assert_matches_spec("create_tag_group", 201, created_group.json())

    reads = {
        "get_tags": "/api/tags?include=tag-group",
        "get_tag": f"/api/tags/{tag_id}?include=tag-group",
        "get_tag_groups": "/api/tag-groups",
        "get_tag_group": f"/api/tag-groups/{group['id']}",
        "get_tag_group_for_tag": f"/api/tags/{tag_id}/tag-group",
        "get_tag_group_id_for_tag": f"/api/tags/{tag_id}/relationships/tag-group",
        "get_tags_for_tag_group": f"/api/tag-groups/{group['id']}/tags",
        "get_tag_ids_for_tag_group": f"/api/tag-groups/{group['id']}/relationships/tags",
    }
    for relationship, (get_op, _, _) in OPERATION.items():
        reads[get_op] = f"/api/tags/{tag_id}/relationships/{relationship}"
    http.post(f"/api/tags/{tag_id}/relationships/lists", json=ids_body("list", "L1"))
    for operation_id, path in reads.items():
        response = http.get(path)
        assert response.status_code == 200, (operation_id, response.text)
        assert response.headers["content-type"].startswith("application/vnd.api+json")
        assert_matches_spec(operation_id, 200, response.json())

    writes = [
        ("update_tag", http.patch(f"/api/tags/{tag_id}",
                                  json={"data": {"type": "tag", "id": tag_id, "attributes": {"name": "e-mail"}}})),
        ("update_tag_group", http.patch(f"/api/tag-groups/{group['id']}",
                                        json={"data": {"type": "tag-group", "id": group["id"],
                                                       "attributes": {"name": "Channel"}}})),
        ("remove_tag_from_lists", http.request("DELETE", f"/api/tags/{tag_id}/relationships/lists",
                                               json=ids_body("list", "L1"))),
        ("delete_tag", http.delete(f"/api/tags/{tag_id}")),
        ("delete_tag_group", http.delete(f"/api/tag-groups/{group['id']}")),
    ]
    for operation_id, response in writes:
        assert response.status_code == 204, (operation_id, response.text)
        assert_matches_spec(operation_id, 204, None)


def test_resource_shape(http, server):
    tag = make_tag(http, "shape")
    assert set(tag) == {"type", "id", "attributes", "relationships", "links"}
    assert tag["links"]["self"] == f"{server.url}/api/tags/{tag['id']}/"
    assert list(tag["relationships"]) == ["tag-group", "lists", "segments", "campaigns", "flows"]
    assert tag["relationships"]["lists"]["links"] == {
        "self": f"{server.url}/api/tags/{tag['id']}/relationships/lists/",
        "related": f"{server.url}/api/tags/{tag['id']}/lists/",
    }
    group = http.get("/api/tag-groups").json()["data"][0]
    assert list(group["relationships"]) == ["tags"]
    assert group["attributes"] == {"name": "Default", "exclusive": False, "default": True}


# --------------------------------------------------------------------------- the default group


def test_default_group_is_created_once_and_takes_ungrouped_tags(http):
    first = http.get("/api/tag-groups").json()["data"]
    assert [(g["attributes"]["name"], g["attributes"]["default"]) for g in first] == [("Default", True)]
    tag = make_tag(http, "loose")
    linkage = http.get(f"/api/tags/{tag['id']}/relationships/tag-group").json()["data"]
    assert linkage == {"type": "tag-group", "id": first[0]["id"]}
    assert [g["id"] for g in http.get("/api/tag-groups").json()["data"]] == [first[0]["id"]]


def test_default_group_can_be_renamed_but_not_deleted(http):
    make_group(http, "Taken")
    default = http.get("/api/tag-groups", params={"filter": "equals(default,true)"}).json()["data"][0]
    path = f"/api/tag-groups/{default['id']}"
    rename = {"data": {"type": "tag-group", "id": default["id"], "attributes": {"name": "General"}}}
    assert http.patch(path, json=rename).status_code == 204
    assert http.get(path).json()["data"]["attributes"] == {"name": "General", "exclusive": False, "default": True}
    clash = {"data": {"type": "tag-group", "id": default["id"], "attributes": {"name": "Taken"}}}
    assert error_of(http.patch(path, json=clash), 409)["source"] == {"pointer": "/data/attributes/name"}
    err = error_of(http.delete(path), 400)
    assert "default tag group cannot be deleted" in err["detail"]
    assert http.get(path).status_code == 200


def test_group_flags_cannot_change(http):
    group = make_group(http, "Fixed")
    for name, value in (("exclusive", True), ("default", True)):
        body = {"data": {"type": "tag-group", "id": group["id"], "attributes": {"name": "Fixed", name: value}}}
        err = error_of(http.patch(f"/api/tag-groups/{group['id']}", json=body), 400)
        assert err["source"] == {"pointer": f"/data/attributes/{name}"}
    assert http.get(f"/api/tag-groups/{group['id']}").json()["data"]["attributes"]["exclusive"] is False


# --------------------------------------------------------------------------- names


def test_tag_names_are_unique_within_a_group(http):
    other = make_group(http, "Other")
    first = make_tag(http, "sale")
    err = error_of(http.post("/api/tags", json=tag_body("sale")), 409)
    assert err["source"] == {"pointer": "/data/attributes/name"}
    make_tag(http, "sale", other["id"])  # another group: fine
    second = make_tag(http, "clearance")
    rename = {"data": {"type": "tag", "id": second["id"], "attributes": {"name": "sale"}}}
    error_of(http.patch(f"/api/tags/{second['id']}", json=rename), 409)
    same = {"data": {"type": "tag", "id": first["id"], "attributes": {"name": "sale"}}}
    assert http.patch(f"/api/tags/{first['id']}", json=same).status_code == 204


def test_group_names_are_unique(http):
    make_group(http, "Brand")
    error_of(http.post("/api/tag-groups", json=group_body("Brand")), 409)
    error_of(http.post("/api/tag-groups", json=group_body("Default")), 409)


@pytest.mark.parametrize("name", ["", "   ", "x" * 256])
def test_unusable_names(http, name):
    err = error_of(http.post("/api/tags", json=tag_body(name)), 400)
    assert err["source"] == {"pointer": "/data/attributes/name"}
    error_of(http.post("/api/tag-groups", json=group_body(name)), 400)


# --------------------------------------------------------------------------- bad bodies


def test_bad_bodies(http):
    tag = make_tag(http, "body")
    path = f"/api/tags/{tag['id']}"
    cases = [
        (http.post("/api/tags", json={"data": {"type": "tags", "attributes": {"name": "x"}}}), "/data/type"),
        (http.post("/api/tags", json={"data": {"type": "tag", "attributes": {}}}), "/data/attributes/name"),
        (http.post("/api/tags", json={"data": {"type": "tag", "attributes": {"name": 5}}}), "/data/attributes/name"),
        (http.post("/api/tags", json={"data": {"type": "tag", "attributes": {"name": "x", "color": "red"}}}),
         "/data/attributes/color"),
        (http.post("/api/tags", json={"data": {"type": "tag", "attributes": {"name": "x"}, "relationships": {
            "tag-group": {"data": {"type": "tag", "id": "x"}}}}}), "/data/relationships/tag-group/data/type"),
        (http.post("/api/tag-groups", json={"data": {"type": "tag", "attributes": {"name": "x"}}}), "/data/type"),
        (http.post("/api/tag-groups", json={"data": {"type": "tag-group", "attributes": {"name": "x",
                                                                                          "exclusive": "yes"}}}),
         "/data/attributes/exclusive"),
        (http.patch(path, json={"data": {"type": "tag-group", "id": tag["id"], "attributes": {"name": "y"}}}),
         "/data/type"),
        (http.patch(path, json={"data": {"type": "tag", "id": "other", "attributes": {"name": "y"}}}), "/data/id"),
        (http.patch(path, json={"data": {"type": "tag", "id": tag["id"]}}), "/data/attributes"),
        # A tag never moves to another group.
        (http.patch(path, json={"data": {"type": "tag", "id": tag["id"], "attributes": {"name": "y"},
                                         "relationships": {}}}), "/data/relationships"),
        (http.post(f"{path}/relationships/lists", json={"data": [{"type": "segment", "id": "s"}]}), "/data/0/type"),
        (http.post(f"{path}/relationships/lists", json={"data": {"type": "list", "id": "s"}}), "/data"),
    ]
    for response, pointer in cases:
        # A resource object of the wrong type or id is a 409 Conflict (JSON:API); other faults are 400.
        status = 409 if pointer.endswith(("/type", "/data/id")) else 400
        assert error_of(response, status)["source"] == {"pointer": pointer}, response.request.content
    assert error_of(http.post("/api/tags", json={}), 400)["source"] == {"pointer": "/data"}
    malformed = http.post("/api/tags", content=b"{not json")
    assert error_of(malformed, 400)["code"] == "parse_error"
    assert http.get(path).json()["data"]["attributes"]["name"] == "body"


def test_unknown_ids_and_other_accounts(http, server, other_account):
    headers = httpx.Headers(http.headers)
    headers["Authorization"] = f"Klaviyo-API-Key {other_account.key}"
    theirs = httpx.Client(base_url=server.url, headers=headers)
    their_tag = make_tag(theirs, "theirs")
    their_group = make_group(theirs, "Theirs")
    mine = make_tag(http, "mine")
    for tag_id in (their_tag["id"], str(uuid.uuid4())):
        for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/tag-group"), ("GET", "/relationships/tag-group"),
                             ("GET", "/relationships/lists")):
            error_of(http.request(method, f"/api/tags/{tag_id}{path}"), 404)
        rename = {"data": {"type": "tag", "id": tag_id, "attributes": {"name": "x"}}}
        error_of(http.patch(f"/api/tags/{tag_id}", json=rename), 404)
        error_of(http.post(f"/api/tags/{tag_id}/relationships/flows", json=ids_body("flow")), 404)
    for group_id in (their_group["id"], str(uuid.uuid4())):
        for suffix in ("", "/tags", "/relationships/tags"):
            error_of(http.get(f"/api/tag-groups/{group_id}{suffix}"), 404)
        error_of(http.delete(f"/api/tag-groups/{group_id}"), 404)
        rename = {"data": {"type": "tag-group", "id": group_id, "attributes": {"name": "x"}}}
        error_of(http.patch(f"/api/tag-groups/{group_id}", json=rename), 404)
        err = error_of(http.post("/api/tags", json=tag_body("x", group_id)), 404)
        assert err["source"] == {"pointer": "/data/relationships/tag-group/data/id"}
    assert theirs.get(f"/api/tags/{their_tag['id']}").status_code == 200
    assert [t["id"] for t in http.get("/api/tags").json()["data"]] == [mine["id"]]
    theirs.close()


# --------------------------------------------------------------------------- filter, sort, pages


def test_tag_filters(http):
    for name in ("alpha", "alphabet", "beta", "gamma"):
        make_tag(http, name)

    def names(expression: str) -> list[str]:
        response = http.get("/api/tags", params={"filter": expression, "sort": "name"})
        assert response.status_code == 200, response.text
        return [t["attributes"]["name"] for t in response.json()["data"]]

    assert names("equals(name,'beta')") == ["beta"]
    assert names("equals(name,['beta','gamma','nope'])") == ["beta", "gamma"]
    assert names("contains(name,'ph')") == ["alpha", "alphabet"]
    assert names("starts-with(name,'alpha')") == ["alpha", "alphabet"]
    assert names("ends-with(name,'ma')") == ["gamma"]
    assert names("contains(name,'%')") == []
    for bad in ("greater-than(name,'a')", "equals(id,'x')", "any(name,['a'])", "equals(name,1)", "equals(name"):
        err = error_of(http.get("/api/tags", params={"filter": bad}), 400)
        assert err["source"] == {"parameter": "filter"}


def test_tag_group_filters(http):
    make_group(http, "Exclusive one", exclusive=True)
    make_group(http, "Open one")

    def names(expression: str) -> list[str]:
        response = http.get("/api/tag-groups", params={"filter": expression, "sort": "name"})
        assert response.status_code == 200, response.text
        return [g["attributes"]["name"] for g in response.json()["data"]]

    assert names("equals(exclusive,true)") == ["Exclusive one"]
    assert names("equals(exclusive,false)") == ["Default", "Open one"]
    assert names("equals(default,true)") == ["Default"]
    assert names("and(equals(default,false),ends-with(name,'one'))") == ["Exclusive one", "Open one"]
    assert names("equals(name,['Open one','Default'])") == ["Default", "Open one"]
    error_of(http.get("/api/tag-groups", params={"filter": "equals(exclusive,'true')"}), 400)
    error_of(http.get("/api/tag-groups", params={"filter": "contains(exclusive,true)"}), 400)


def test_sort_and_keyset_pages(http):
    names = [f"tag-{i:02d}" for i in range(7)]
    for name in reversed(names):
        make_tag(http, name)
    ascending = walk(http, "/api/tags", {"sort": "name", "page[size]": "3"})
    assert [t["attributes"]["name"] for t in ascending] == names
    descending = walk(http, "/api/tags", {"sort": "-name", "page[size]": "2"})
    assert [t["attributes"]["name"] for t in descending] == names[::-1]
    by_id = walk(http, "/api/tags", {"sort": "id", "page[size]": "4"})
    assert [t["id"] for t in by_id] == sorted(t["id"] for t in ascending)
    assert [t["id"] for t in walk(http, "/api/tags", {"sort": "-id"})] == sorted((t["id"] for t in ascending),
                                                                             reverse=True)

    first = http.get("/api/tags", params={"sort": "name", "page[size]": "3"}).json()
    assert "prev" not in first["links"]
    second = http.get(first["links"]["next"]).json()
    back = http.get(second["links"]["prev"]).json()
    assert [t["id"] for t in back["data"]] == [t["id"] for t in first["data"]]
    assert_matches_spec("get_tags", 200, second)

    error_of(http.get("/api/tags", params={"page[size]": "51"}), 400)
    error_of(http.get("/api/tags", params={"sort": "created"}), 400)
    error_of(http.get("/api/tags", params={"page[cursor]": "forged"}), 400)
    assert len(http.get("/api/tags", params={"page[size]": "50"}).json()["data"]) == 7


def test_tag_group_pages(http):
    for i in range(5):
        make_group(http, f"g{i}")
    groups = walk(http, "/api/tag-groups", {"sort": "-name", "page[size]": "2"})
    assert [g["attributes"]["name"] for g in groups] == ["g4", "g3", "g2", "g1", "g0", "Default"]
    error_of(http.get("/api/tag-groups", params={"page[size]": "26"}), 400)
    error_of(http.get("/api/tag-groups", params={"include": "tags"}), 400)


# --------------------------------------------------------------------------- include, sparse fieldsets


def test_include_tag_group(http):
    group = make_group(http, "Stage")
    staged = make_tag(http, "lead", group["id"])
    loose = make_tag(http, "loose")
    body = http.get("/api/tags", params={"include": "tag-group", "fields[tag-group]": "name",
                                         "fields[tag]": "name", "sort": "name"}).json()
    by_id = {t["id"]: t for t in body["data"]}
    assert by_id[staged["id"]]["relationships"]["tag-group"]["data"] == {"type": "tag-group", "id": group["id"]}
    default_id = by_id[loose["id"]]["relationships"]["tag-group"]["data"]["id"]
    assert sorted(g["id"] for g in body["included"]) == sorted([group["id"], default_id])
    assert all(set(g["attributes"]) == {"name"} for g in body["included"])

    one = http.get(f"/api/tags/{staged['id']}", params={"include": "tag-group"}).json()
    assert_matches_spec("get_tag", 200, one)
    assert one["included"][0]["attributes"] == {"name": "Stage", "exclusive": False, "default": False}
    assert "included" not in http.get(f"/api/tags/{staged['id']}").json()
    error_of(http.get("/api/tags", params={"include": "lists"}), 400)


def test_sparse_fieldsets(http):
    group = make_group(http, "Sparse", exclusive=True)
    tag = make_tag(http, "thin", group["id"])
    assert http.get(f"/api/tags/{tag['id']}", params={"fields[tag]": "id"}).json()["data"]["attributes"] == {}
    attrs = http.get(f"/api/tag-groups/{group['id']}", params={"fields[tag-group]": "exclusive,default"}) \
        .json()["data"]["attributes"]
    assert attrs == {"exclusive": True, "default": False}
    listed = http.get("/api/tag-groups", params={"fields[tag-group]": "name"}).json()["data"]
    assert all(set(g["attributes"]) == {"name"} for g in listed)
    in_group = http.get(f"/api/tag-groups/{group['id']}/tags", params={"fields[tag]": "name"}).json()["data"]
    assert in_group[0]["attributes"] == {"name": "thin"}
    of_tag = http.get(f"/api/tags/{tag['id']}/tag-group", params={"fields[tag-group]": "name"}).json()["data"]
    assert of_tag["attributes"] == {"name": "Sparse"}
    created = http.post("/api/tags", params={"fields[tag]": "id"}, json=tag_body("thinner")).json()["data"]
    assert created["attributes"] == {}
    err = error_of(http.get(f"/api/tags/{tag['id']}", params={"fields[tag]": "color"}), 400)
    assert err["source"] == {"parameter": "fields[tag]"}
    error_of(http.get("/api/tag-groups", params={"fields[tag]": "name"}), 400)


# --------------------------------------------------------------------------- limits


def test_account_tag_limit(http, server, account):
    default = default_group_id(server, account)
    with server.db.write() as conn:
        store.insert_tags(conn, [{"id": str(uuid.uuid4()), "account_id": account.id, "tag_group_id": default,
                                  "name": f"bulk {i}", "created": SystemClock().now()}
                                 for i in range(rules.MAX_TAGS_PER_ACCOUNT - 1)])
    make_tag(http, "the 500th")
    err = error_of(http.post("/api/tags", json=tag_body("one too many")), 400)
    assert "500 tags" in err["detail"]


def test_account_tag_group_limit(http):
    for i in range(rules.MAX_GROUPS_PER_ACCOUNT - 1):  # the default group counts
        make_group(http, f"group {i}")
    err = error_of(http.post("/api/tag-groups", json=group_body("one too many")), 400)
    assert "50 tag groups" in err["detail"]


def test_resource_tag_limit(http, server, account, known):
    known[(account.id, "campaign")] = {"C1", "C2"}
    default = default_group_id(server, account)
    tag_ids = [str(uuid.uuid4()) for _ in range(rules.MAX_TAGS_PER_RESOURCE)]
    with server.db.write() as conn:
        store.insert_tags(conn, [{"id": tid, "account_id": account.id, "tag_group_id": default,
                                  "name": f"t{i}", "created": SystemClock().now()} for i, tid in enumerate(tag_ids)])
        for tid in tag_ids:
            store.add_assignments(conn, account.id, tid, "campaign", ["C1"])
    extra = make_tag(http, "extra")
    path = f"/api/tags/{extra['id']}/relationships/campaigns"
    err = error_of(http.post(path, json=ids_body("campaign", "C2", "C1")), 400)
    assert err["source"] == {"pointer": "/data/1/id"} and "100 tags" in err["detail"]
    assert http.get(path).json()["data"] == []  # all or nothing
    # Re-tagging C1 with a tag it already has adds nothing, so it is not refused.
    assert http.post(f"/api/tags/{tag_ids[0]}/relationships/campaigns",
                     json=ids_body("campaign", "C1")).status_code == 204


# --------------------------------------------------------------------------- tagging rules


def test_unregistered_resource_types_are_refused(http, monkeypatch):
    # The server runs in this process: an empty registry is what it sees.
    monkeypatch.setattr(rules, "RESOURCE_EXISTS", {})
    tag = make_tag(http, "nothing yet")
    for relationship, rtype, *_ in RESOURCES:
        path = f"/api/tags/{tag['id']}/relationships/{relationship}"
        err = error_of(http.post(path, json=ids_body(rtype, "abc")), 404)
        assert err["source"] == {"pointer": "/data/0/id"} and "does not exist" in err["detail"]
        error_of(http.request("DELETE", path, json=ids_body(rtype, "abc")), 404)
        assert http.get(path).json()["data"] == []


def test_tagging_checks_every_id_and_is_idempotent(http, account, other_account, known):
    known[(account.id, "list")] = {"A", "B"}
    known[(other_account.id, "list")] = {"THEIRS"}
    tag = make_tag(http, "checked")
    path = f"/api/tags/{tag['id']}/relationships/lists"
    err = error_of(http.post(path, json=ids_body("list", "A", "THEIRS", "nope")), 404)
    assert err["source"] == {"pointer": "/data/1/id"}
    assert "'THEIRS', 'nope'" in err["detail"]
    assert http.get(path).json()["data"] == []
    for _ in range(2):
        assert http.post(path, json=ids_body("list", "B", "A", "B")).status_code == 204
    assert http.get(path).json()["data"] == [{"type": "list", "id": "A"}, {"type": "list", "id": "B"}]
    assert http.post(path, json=ids_body("list")).status_code == 204  # empty: nothing to do


def test_untagging(http, account, known, monkeypatch):
    known[(account.id, "segment")] = {"S1", "S2"}
    tag = make_tag(http, "untag")
    path = f"/api/tags/{tag['id']}/relationships/segments"
    http.post(path, json=ids_body("segment", "S1"))
    # S2 exists but is not tagged: nothing to do. "gone" neither exists nor is tagged: refused.
    assert http.request("DELETE", path, json=ids_body("segment", "S2")).status_code == 204
    err = error_of(http.request("DELETE", path, json=ids_body("segment", "S1", "gone")), 404)
    assert err["source"] == {"pointer": "/data/1/id"}
    assert http.get(path).json()["data"] == [{"type": "segment", "id": "S1"}]
    # A tagged resource that no longer exists can still be untagged.
    monkeypatch.delitem(rules.RESOURCE_EXISTS, "segment")
    assert http.request("DELETE", path, json=ids_body("segment", "S1")).status_code == 204
    assert http.get(path).json()["data"] == []


def test_exclusive_groups_allow_one_tag_per_resource(http, account, known):
    known[(account.id, "flow")] = {"F1", "F2"}
    exclusive = make_group(http, "Lifecycle", exclusive=True)
    open_group = make_group(http, "Topics")
    new, loyal = make_tag(http, "new", exclusive["id"]), make_tag(http, "loyal", exclusive["id"])
    a, b = make_tag(http, "a", open_group["id"]), make_tag(http, "b", open_group["id"])

    def flows(tag: dict) -> str:
        return f"/api/tags/{tag['id']}/relationships/flows"

    assert http.post(flows(new), json=ids_body("flow", "F1")).status_code == 204
    err = error_of(http.post(flows(loyal), json=ids_body("flow", "F2", "F1")), 400)
    assert err["source"] == {"pointer": "/data/1/id"} and "exclusive" in err["detail"]
    assert http.get(flows(loyal)).json()["data"] == []
    assert http.post(flows(new), json=ids_body("flow", "F1")).status_code == 204  # same tag again: fine
    assert http.post(flows(loyal), json=ids_body("flow", "F2")).status_code == 204
    for tag in (a, b):  # non-exclusive: both
        assert http.post(flows(tag), json=ids_body("flow", "F1")).status_code == 204
    # After untagging, the other tag of the exclusive group may take its place.
    http.request("DELETE", flows(new), json=ids_body("flow", "F1"))
    assert http.post(flows(loyal), json=ids_body("flow", "F1")).status_code == 204


def test_deleting_removes_associations(http, server, account, known):
    known[(account.id, "list")] = {"L"}
    group = make_group(http, "Doomed")
    in_group, alone = make_tag(http, "in group", group["id"]), make_tag(http, "alone")
    for tag in (in_group, alone):
        http.post(f"/api/tags/{tag['id']}/relationships/lists", json=ids_body("list", "L"))

    def tags_on_list() -> list[str]:
        with server.db.read() as conn:
            return sorted(row.name for row in rules.tags_of(conn, account.id, "list", ["L"]).get("L", []))

    assert tags_on_list() == ["alone", "in group"]
    assert http.delete(f"/api/tag-groups/{group['id']}").status_code == 204
    assert tags_on_list() == ["alone"]
    error_of(http.get(f"/api/tags/{in_group['id']}"), 404)
    assert http.delete(f"/api/tags/{alone['id']}").status_code == 204
    assert tags_on_list() == []


def test_tag_group_writes_at_older_revisions_answer_with_the_group(http):
    from tests.spec import OLD_SPEC

    made = http.post("/api/tag-groups", json={"data": {"type": "tag-group", "attributes": {"name": "Old style"}}})
    group_id = made.json()["data"]["id"]
    old = {"revision": "2024-10-15"}
    renamed = http.patch(f"/api/tag-groups/{group_id}", headers=old, json={
        "data": {"type": "tag-group", "id": group_id, "attributes": {"name": "Renamed"}}})
    assert renamed.status_code == 200
    assert renamed.json()["data"]["attributes"]["name"] == "Renamed"
    assert_matches_spec("update_tag_group", 200, renamed.json(), spec=OLD_SPEC)
    deleted = http.delete(f"/api/tag-groups/{group_id}", headers=old)
    assert deleted.status_code == 200 and deleted.json()["data"]["id"] == group_id
    assert_matches_spec("delete_tag_group", 200, deleted.json(), spec=OLD_SPEC)
    assert http.get(f"/api/tag-groups/{group_id}").status_code == 404
